// systemd's Type=notify, from the master: READY=1 once every worker is ready, RELOADING=1 (with
// MONOTONIC_USEC) and READY=1 around each reload, STOPPING=1 when the stop starts (at the SIGTERM
// that starts --shutdown-delay: the unit is going away), a STATUS= line as workers come and go, and
// WATCHDOG=1 at half of WATCHDOG_USEC when the unit sets WatchdogSec=.
//
// The messages are datagrams to the unix socket in NOTIFY_SOCKET, which Node cannot send; the
// native helper does (one sendto). Without it, each message is sent by running `systemd-notify`,
// which systemd accepts only with NotifyAccess=all (the sender is then a child of the master, not
// the master) and which races: systemd may have forgotten the child's unit by the time it reads the
// datagram. The README's systemd section says so; examples/systemd uses the helper.
import { execFile } from 'node:child_process';
import type { LogSink } from './logs.js';
import { errnoName, nativeHelper } from '../system/native.js';
import { MAX_TIMER_MS } from '../options.js';
import { dropSystemdEnv, NOTIFY_ENV } from '../system/systemd-env.js';

/** Sends one notification (newline-separated KEY=VALUE lines); resolves with an error message or null. */
type Send = (message: string) => Promise<string | null>;

export interface NotifierOptions {
  env?: NodeJS.ProcessEnv;
  logs: LogSink;
  pid?: number;
  /** The transport; by default the native helper, else systemd-notify. */
  send?: Send;
}

export class SystemdNotifier {
  readonly #send: Send;
  readonly #logs: LogSink;
  #watchdog: NodeJS.Timeout | null = null;
  #lastStatus = '';
  #failed = false;
  /** STOPPING=1 was sent: the unit is going away, and nothing may say it is ready again. */
  #stopping = false;

  /** A notifier when NOTIFY_SOCKET is set (systemd started us with Type=notify), else null. */
  static fromEnv({ env = process.env, logs, pid = process.pid, send }: NotifierOptions): SystemdNotifier | null {
    const socket = env.NOTIFY_SOCKET;
    if (!socket) return null;
    const notifier = new SystemdNotifier(send ?? defaultSend(socket), logs);
    const watchdogUsec = Number(env.WATCHDOG_USEC);
    const watchdogPid = env.WATCHDOG_PID === undefined ? pid : Number(env.WATCHDOG_PID);
    // The master speaks for the unit: its workers (and what they start) do not inherit the socket,
    // as sd_notify's unset_environment asks, and as LISTEN_* are not passed on (activation.ts).
    dropSystemdEnv(env, NOTIFY_ENV);
    // Half the period, as sd_watchdog_enabled() advises, and never longer than a timer can wait (a
    // period past ~50 days still gets its pings, more often than it needs).
    if (Number.isSafeInteger(watchdogUsec) && watchdogUsec >= 2000 && watchdogPid === pid) {
      notifier.#watchdog = setInterval(() => notifier.notify('WATCHDOG=1'), Math.min(Math.floor(watchdogUsec / 2000), MAX_TIMER_MS)).unref();
    }
    return notifier;
  }

  private constructor(send: Send, logs: LogSink) {
    this.#send = send;
    this.#logs = logs;
  }

  // After STOPPING=1 these say nothing: a reload that the stop ended still ends (READY=1), and the
  // workers draining still change the count; neither is news to a unit that is stopping.
  ready(status: string): void {
    if (this.#stopping) return;
    this.#lastStatus = status;
    this.notify(`READY=1\nSTATUS=${status}`);
  }

  reloading(): void {
    if (this.#stopping) return;
    this.notify(`RELOADING=1\nMONOTONIC_USEC=${monotonicUsec()}\nSTATUS=reloading`);
  }

  /** Once: at the SIGTERM that starts --shutdown-delay, or when the stop starts. */
  stopping(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.stopWatchdog();
    this.notify('STOPPING=1\nSTATUS=stopping');
  }

  /** A STATUS= line, when it changed. */
  status(status: string): void {
    if (this.#stopping || status === this.#lastStatus) return;
    this.#lastStatus = status;
    this.notify(`STATUS=${status}`);
  }

  stopWatchdog(): void {
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#watchdog = null;
  }

  notify(message: string): void {
    void this.#send(message).then((error) => {
      // Once: a socket that is gone stays gone, and the cluster serves on regardless.
      if (error === null || this.#failed) return;
      this.#failed = true;
      this.#logs.event('notify-failed', `systemd notification failed (${error}); the cluster keeps running`, { error }, 'warn');
    });
  }
}

/** CLOCK_MONOTONIC in microseconds, as systemd wants it with RELOADING=1. */
function monotonicUsec(): string {
  return (process.hrtime.bigint() / 1000n).toString();
}

function defaultSend(socket: string): Send {
  const helper = nativeHelper();
  if (helper?.notify) {
    const notify = helper.notify.bind(helper);
    return (message) => {
      const result = notify(socket, message);
      return Promise.resolve(result === 0 ? null : `sendto ${socket}: ${errnoName(result)}`);
    };
  }
  return (message) =>
    new Promise((resolve) => {
      execFile('systemd-notify', [`--pid=${process.pid}`, ...message.split('\n')], { timeout: 5000 }, (error) => resolve(error ? `systemd-notify: ${error.message.split('\n')[0]}` : null));
    });
}
