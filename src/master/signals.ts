// What an operator's signals ask of the master (a graceful stop, a forced one, a reload, a scale, a
// log file reopened), start()'s caller going away, and --shutdown-delay: the wait between "you are
// being removed" and the drain, while the master serves on and says it is no longer ready.
import type { MasterControl } from './control.js';
import type { LogFile } from './log-file.js';
import type { LogSink } from './logs.js';
import { hasTerminal } from './own-stdio.js';
import type { SystemdNotifier } from './sd-notify.js';
import type { Supervisor } from './supervisor.js';

/** The signals that stop the cluster gracefully (a second one forces the stop); SIGHUP does too, from a terminal that hung up. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGUSR2'] as const;

export interface MasterSignalsOptions {
  supervisor: Supervisor;
  logs: LogSink;
  /** --shutdown-delay in ms: on SIGTERM (or SIGQUIT), /readyz says 503 at once and the drain starts this much later. */
  shutdownDelayMs: number;
  notifier: SystemdNotifier | null;
}

export class MasterSignals {
  readonly #supervisor: Supervisor;
  readonly #logs: LogSink;
  readonly #shutdownDelayMs: number;
  readonly #notifier: SystemdNotifier | null;
  /** Waiting out --shutdown-delay: still serving, no longer ready for new traffic. */
  #delaying: NodeJS.Timeout | null = null;
  /**
   * The caller's going started the stop: the signal the master often had too (its group's Ctrl-C or
   * SIGTERM) can come after the channel closed, and is no second request either.
   */
  #stoppedForCaller = false;
  /**
   * Signal handlers only enqueue: the requests run in order, each from the event loop after the
   * handler has returned (gunicorn's rule), so a burst of signals never interleaves with itself.
   */
  readonly #requests: Array<() => void> = [];

  constructor({ supervisor, logs, shutdownDelayMs, notifier }: MasterSignalsOptions) {
    this.#supervisor = supervisor;
    this.#logs = logs;
    this.#shutdownDelayMs = shutdownDelayMs;
    this.#notifier = notifier;
    // Any stop ends the delay: `clusterd stop`, start()'s stop() (which asks the same), a fatal error. Left
    // to run, the timer asked to stop again when it fired, and a second stop forces: every worker was
    // killed mid-request (exit 6) although nobody had asked for more than a graceful stop.
    supervisor.once('stopping', () => {
      if (!this.#delaying) return;
      this.#endDelay();
      logs.event('shutdown-delay', 'stop asked during --shutdown-delay: draining now', { shutdownDelayMs });
    });
  }

  /** Going away, from the SIGTERM that starts the delay: /readyz says so, and no operation starts. */
  leaving(): boolean {
    const { phase } = this.#supervisor;
    return this.#delaying !== null || phase === 'stopping' || phase === 'stopped';
  }

  /** Listens for the operator's signals, and for `callerGone` (start()'s caller gone). */
  listen({ control, logFile, callerGone }: { control: MasterControl; logFile: LogFile | null; callerGone?: AbortSignal }): void {
    const logs = this.#logs;
    const onStop = (signal: NodeJS.Signals): void => this.#enqueue(() => this.#stopSignal(signal));
    // SIGQUIT (nginx's graceful stop, and so many images' STOPSIGNAL) and SIGUSR2 (how nodemon
    // restarts a process: it sends it, then waits for the exit) kill a Node process that does not
    // listen, cluster and requests in flight with it; as PID 1 in a container, the kernel does not
    // deliver a signal nobody listens for, and the stop waited for SIGKILL. Both stop gracefully.
    for (const signal of STOP_SIGNALS) process.on(signal, onStop);
    if (callerGone?.aborted) this.#enqueue(() => this.#callerGone());
    else callerGone?.addEventListener('abort', () => this.#enqueue(() => this.#callerGone()), { once: true });
    // SIGHUP is a reload (nginx's, gunicorn's), except from a terminal that hung up (the SSH session
    // closed, the window shut): the operator left, and a server run in the foreground goes with them,
    // as `node app.js` would, rather than reload and serve on with nowhere to log.
    const hadTerminal = hasTerminal();
    process.on('SIGHUP', () => {
      if (hadTerminal && !hasTerminal()) return onStop('SIGHUP');
      this.#operate(() => control.reload({ parallel: 1 }, ({ id, message, ...progress }) => logs.event('reload', message, { worker: id, ...progress }), 'SIGHUP'));
    });
    // logrotate's convention: after it moved the file away, SIGUSR1 says "open it again". Without a
    // log file it is heard all the same: unheard, Node would open an inspector on 127.0.0.1:9229, where
    // any local user may run code as the master (and any app of its workers can send the signal).
    process.on('SIGUSR1', () => reopenLogFile(logFile, logs));
    process.on('SIGTTIN', () => this.#operate(() => control.scale('+1', 'SIGTTIN')));
    process.on('SIGTTOU', () => this.#operate(() => control.scale('-1', 'SIGTTOU')));
  }

  #enqueue(request: () => void): void {
    this.#requests.push(request);
    if (this.#requests.length === 1) setImmediate(() => this.#requests.splice(0).forEach((queued) => queued()));
  }

  /**
   * An operation a signal asks for is logged as the control plane's are (MasterControl): asked by
   * the signal, then done or failed; its failure is in the log, and nobody else waits for it.
   */
  #operate(run: () => Promise<unknown>): void {
    this.#enqueue(() => {
      if (this.#supervisor.phase !== 'running' || this.leaving()) return;
      run().catch(() => {});
    });
  }

  #stopSignal(signal: NodeJS.Signals): void {
    const supervisor = this.#supervisor;
    const logs = this.#logs;
    if (this.#stoppedForCaller) {
      this.#stoppedForCaller = false;
      if (this.#delaying || supervisor.phase === 'stopping') {
        logs.event('signal', `${signal}: already stopping, the process that called start() being gone (again to force)`, { signal });
        return;
      }
    }
    if (this.#delaying) {
      // Again during the delay: drain now.
      this.#endDelay();
      logs.event('signal', `${signal} again: draining now, before the end of --shutdown-delay (again to force)`, { signal });
      supervisor.stop();
      return;
    }
    const forcing = supervisor.phase === 'stopping';
    if (!forcing && (signal === 'SIGTERM' || signal === 'SIGQUIT') && this.#delayThenStop('signal', signal, { signal })) return;
    logs.event('signal', forcing ? `${signal} again: killing workers` : `${signal}: stopping gracefully (again to force)`, { signal });
    supervisor.stop();
  }

  /**
   * start()'s caller gone: a first SIGTERM's stop, or nothing when one is under way. Its going is no
   * second request: a caller exits after its own Ctrl-C or SIGTERM, which the master often had too
   * (the terminal signals the whole process group), and an exit must not kill requests in flight.
   */
  #callerGone(): void {
    if (this.leaving()) return;
    const text = 'the process that called start() is gone';
    this.#stoppedForCaller = true;
    if (this.#delayThenStop('caller-gone', text, {})) return;
    this.#logs.event('caller-gone', `${text}: stopping gracefully`, {});
    this.#supervisor.stop();
  }

  /**
   * SIGTERM is how an orchestrator says "you are being removed": give its load balancers the
   * delay to stop sending before the drain starts, and so for SIGQUIT, the stop signal of images
   * made for nginx (`STOPSIGNAL SIGQUIT`), which Docker and Kubernetes send in its place. Ctrl-C
   * (SIGINT) and nodemon's restart (SIGUSR2) are a person at work: no delay.
   */
  #delayThenStop(event: string, text: string, fields: Record<string, unknown>): boolean {
    const shutdownDelayMs = this.#shutdownDelayMs;
    if (shutdownDelayMs <= 0 || this.#supervisor.phase !== 'running') return false;
    this.#logs.event(event, `${text}: not ready any more (/readyz 503); serving on for ${shutdownDelayMs} ms (--shutdown-delay), then stopping gracefully (again to stop now)`, { ...fields, shutdownDelayMs });
    // systemd hears it now, as the probes do: the unit is stopping, whatever serves until the drain.
    this.#notifier?.stopping();
    this.#delaying = setTimeout(() => {
      this.#delaying = null;
      this.#logs.event('shutdown-delay', `--shutdown-delay over: stopping gracefully`, { shutdownDelayMs });
      this.#supervisor.stop();
    }, shutdownDelayMs);
    return true;
  }

  #endDelay(): void {
    clearTimeout(this.#delaying ?? undefined);
    this.#delaying = null;
  }
}

/** SIGUSR1: the log file opened again (after logrotate moved it away), or said to be ignored without one. */
function reopenLogFile(logFile: LogFile | null, logs: LogSink): void {
  if (!logFile) {
    logs.event('signal-ignored', 'SIGUSR1 ignored: it reopens --log-file, and there is none (the master opens no inspector)', { signal: 'SIGUSR1' }, 'warn');
    return;
  }
  try {
    logFile.reopen();
    logs.event('log-reopened', `log file ${logFile.path} reopened (SIGUSR1)`, { path: logFile.path });
  } catch (error) {
    logs.event('log-reopen-failed', `cannot reopen ${logFile.path}: ${(error as Error).message}; lines go to the old file`, { path: logFile.path }, 'error');
  }
}
