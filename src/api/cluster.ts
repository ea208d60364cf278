// The handle on a running cluster that start() and connect() return: its operations over the control
// plane, and the events (src/index.ts lists them) it emits from the status stream.
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { checkKeys } from '../cli/known-keys.js';
import { parseScaleSpec } from '../cli/control-args.js';
import { askForOutcome, askToStop, masterGone, STOP_MARGIN_MS } from '../cli/stop.js';
import { statusJson, type StatusJson } from '../cli/views.js';
import { ControlClient, NOT_RUNNING, type Subscription } from '../control/client.js';
import type { ClusterView, ProgressView, StackView, WorkerView } from '../control/types.js';
import { ClusterdError, UsageError } from '../errors.js';
import { MAX_INSTANCES } from '../options.js';
import type { LoopSample } from '../loop/types.js';
import { blockedFrame } from '../master/blocked-sites.js';
import type { ReadyInfo } from '../master/run.js';
import type { KilledWorker } from '../master/status.js';

export type { KilledWorker };

export interface WorkerExitEvent {
  id: number;
  pid: number;
}

/**
 * A worker's loop caught blocked: by --report-blocked (the worker serves on; `site` is where, and
 * `blockedMs` the longest block seen there) or by the watchdog (the worker is replaced; `frames` is
 * its whole stack, innermost first, and `blockedMs` that block's length).
 */
export interface BlockedEvent {
  id: number;
  pid: number;
  /** Epoch ms. */
  time: number;
  blockedMs: number;
  site: { function: string; url: string; line: number } | null;
  frames: StackView['frames'];
  replaced: boolean;
}

export interface SampleEvent {
  id: number;
  pid: number;
  sample: LoopSample;
}

export interface ClusterEvents {
  ready: [StatusJson];
  'worker-exit': [WorkerExitEvent];
  blocked: [BlockedEvent];
  sample: [SampleEvent];
  /** The cluster stopped (a stop asked by anyone: `clusterd stop`, a signal, another handle, this one's stop()); the handle is closed. */
  stopped: [];
  /** The status stream failed (the master went away without stopping cleanly); the handle is closed. */
  error: [Error];
}

/** How a cluster's master ended, as stop() resolves: an exit code, or the signal that killed it (a SIGKILL); both null when not known. */
export interface MasterExit {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * What stop() resolves with: how the master ended, and the workers it killed (at --grace, or by a
 * forced stop) rather than drained, as `clusterd stop` names them on stderr; null when the master did
 * not say (one older than that answer, one gone before or without answering, a stop asked elsewhere).
 */
export interface StopResult extends MasterExit {
  killed: KilledWorker[] | null;
}

/** A running cluster: one started by start(), or found by connect(). */
export class Cluster extends EventEmitter<ClusterEvents> {
  readonly name: string;
  readonly masterPid: number;
  /**
   * Where a cluster this process started listens (null for a connected cluster), each in the form its
   * users take it: `addresses`, the app's, as `HOST:PORT` or a unix socket's path; `control` and
   * `health` as `HOST:PORT` (no scheme); `metrics` as a full URL (`http://HOST:PORT/metrics`);
   * `dashboard` as a URL (`http://HOST:PORT/`) or `unix:/path`. Those not asked for are null.
   */
  readonly endpoints: Pick<ReadyInfo, 'addresses' | 'control' | 'metrics' | 'health' | 'dashboard'> | null;
  readonly #client: ControlClient;
  readonly #master: ChildProcess | null;
  #watch: Subscription | null = null;
  #last: ClusterView;
  /** The worker pids at the last 'ready' (or when the handle was made). */
  #readyPids: string;
  #closed = false;
  /** Why the status stream ended, when the master went away rather than close() ending it. */
  #lost: Error | null = null;
  /** The master ended the status stream: its cluster stopped, close() had not been called. */
  #stopped = false;
  /** This handle's stop() was answered: the cluster is stopping as it asked. */
  #stopAsked = false;
  /** This handle's stop() waits for the master's answer, which comes once every worker has exited. */
  #askingToStop = false;
  /** How the status stream ended while stop() waited for its answer: told once the answer says what the end was. */
  #endedWhileAsking: { error: Error | null } | null = null;
  /**
   * Per worker id, the time of the watchdog's catch last told as 'blocked'. The master keeps the
   * report per id, across the id's crash restarts: the previous message's rows cannot say it was
   * told, as an id waiting out its backoff has none, and its next process carries the same report.
   * At most one entry per id (MAX_INSTANCES).
   */
  readonly #toldBlocked = new Map<number, number>();
  /**
   * The master's clock when this handle's first status was made: a catch before it is not news, though
   * its id had no row then (waiting out its backoff: waiting rows carry no report) and shows it later.
   */
  readonly #madeAt: number;

  /** @internal Use start() or connect(). */
  constructor(client: ControlClient, status: ClusterView, started: { master: ChildProcess; info: ReadyInfo } | null = null) {
    super();
    const master = started?.master ?? null;
    const info = started?.info;
    this.endpoints = info ? { addresses: [...info.addresses], control: info.control, metrics: info.metrics, health: info.health, dashboard: info.dashboard } : null;
    this.#client = client;
    this.#last = status;
    this.#master = master;
    this.name = status.name;
    this.masterPid = status.masterPid;
    this.#readyPids = status.workers.map((worker) => worker.pid).sort((a, b) => a - b).join(',');
    // Caught before this handle was made: not news to it.
    this.#madeAt = status.startedAt + status.uptimeMs;
    for (const worker of status.workers) if (worker.lastBlocked) this.#toldBlocked.set(worker.id, worker.lastBlocked.time);
    this.#watch = client.watch(
      { history: false },
      {
        onStatus: (next) => this.#deliver(this.#changed(next)),
        onEnd: (error) => {
          this.#watch = null;
          // The master ends the stream as its stop ends, before the answer stop() waits for: closing
          // the handle's client then would cut that answer off, and whether the end was the stop asked
          // for is known once it has come.
          if (this.#askingToStop) this.#endedWhileAsking = { error };
          else this.#streamEnded(error);
        },
      },
    );
  }

  /** The status stream ended: the cluster stopped, the master went away, or close() ended it. */
  #streamEnded(error: Error | null): void {
    const closed = this.#closed;
    // Once this handle's stop() was answered, the stream's end is the cluster stopping as asked,
    // even where the master's going cut it off rather than ending it.
    const asked = this.#stopAsked;
    if (error && !closed && !asked) this.#lost = error;
    this.#stopped = !closed && (!error || asked);
    this.close();
    if (error && !closed && this.listenerCount('error') > 0) this.#deliver([['error', error]]);
    if (this.#stopped) this.#deliver([['stopped']]);
  }

  /** The cluster now, as `clusterd status --json` prints it. */
  async status(): Promise<StatusJson> {
    this.#usable();
    return statusJson(await this.#client.status());
  }

  /**
   * A rolling reload (`parallel` workers at a time); resolves once every worker is replaced, with the
   * old workers killed at --grace rather than drained in `killed` (none from an older master). Rejects
   * with a BootError when a new worker fails to boot (its `lastOutput`: that worker's last lines) or
   * the entry is gone: the reload stops there, and the old workers not yet replaced go on serving.
   */
  async reload(options: { parallel?: number } = {}): Promise<{ replaced: number; killed: KilledWorker[] }> {
    if (typeof options !== 'object' || options === null) throw new UsageError(`reload(): expected { parallel } or nothing, got ${options === null ? 'null' : typeof options}`);
    checkKeys('reload()', options, ['parallel']);
    const { parallel = 1 } = options;
    this.#usable();
    const killed: KilledWorker[] = [];
    const done = await this.#client.reload({ parallel: whole('reload(): `parallel`', parallel, MAX_INSTANCES) }, collectKilled(killed));
    await this.#catchUp();
    return { replaced: done.replaced, killed };
  }

  /**
   * Replaces worker `id` (drained, new one first); resolves with the new worker's pid, and the old
   * one in `killed` if it was killed at --grace rather than drained. Rejects with a BootError (its
   * `lastOutput`: the new worker's last lines) when the new one fails to boot: the old one serves on.
   */
  async restart(id: number): Promise<{ pid: number; killed: KilledWorker[] }> {
    this.#usable();
    const killed: KilledWorker[] = [];
    const { pid } = await this.#client.restart(whole('restart(): the worker id', id, MAX_INSTANCES), collectKilled(killed));
    await this.#catchUp();
    return { pid, killed };
  }

  /**
   * `4`, `'+2'` or `'-1'` workers; resolves with the new count once they are all ready and those taken
   * away have exited. Rejects with a BootError (its `lastOutput`: the failed worker's last lines) when
   * a worker added fails to boot: the cluster is scaled back to its count before.
   */
  async scale(workers: number | string): Promise<number> {
    // A step up or down is a string only: a number is the count, and `scale(1 - 2)` must not
    // read as '-1' and take a worker away.
    const spec = typeof workers === 'string' ? scaleSpec(workers) : String(whole('scale(): the worker count', workers, MAX_INSTANCES));
    this.#usable();
    const { workers: count } = await this.#client.scale(spec);
    await this.#catchUp();
    return count;
  }

  /**
   * After this handle's own operation: the cluster as it is now, taken through #changed, so that its
   * 'ready' comes before the operation's promise resolves. The status stream alone sends at most
   * every 250 ms: after `await reload(); await scale('+1'); await stop()` in a row, the stop came
   * before the stream's next message, and no 'ready' was emitted at all. A failure here is the
   * stream's to report: the operation itself was done.
   */
  async #catchUp(): Promise<void> {
    try {
      const now = await this.#client.status();
      if (!this.#closed) this.#deliver(this.#changed(now));
    } catch {
      // The master went away just after answering: the stream's end says so.
    }
  }

  /** Worker `id`'s JavaScript stack now. */
  async stack(id: number): Promise<StackView> {
    this.#usable();
    return this.#client.stack(whole('stack(): the worker id', id, MAX_INSTANCES));
  }

  /**
   * Stops the cluster gracefully and resolves once its master has exited. For a master this process
   * started: its exit code, or null and the signal that killed it (`'SIGKILL'`); both null for a
   * master found by connect() (another process's child: how it ended cannot be seen from here). With
   * them, `killed`: the workers the master killed rather than drained (null when it did not say).
   */
  async stop(): Promise<StopResult> {
    const master = this.#master;
    const exited = master ? exitOf(master) : null;
    const untold = async (exit: Promise<MasterExit>): Promise<StopResult> => ({ ...(await exit), killed: null });
    // Its master gone or going already (killed, crashed, stopped by another's request; its exit may
    // not be seen yet when the stream ended): there is nothing to ask, only how it ended.
    if (exited && (this.#lost !== null || this.#stopped || master!.exitCode !== null || master!.signalCode !== null)) {
      this.close();
      master!.ref();
      return untold(exited);
    }
    this.#usable();
    let asked: { graceMs: number; killed: KilledWorker[] | null };
    try {
      asked = await this.#askToStop();
    } catch (error) {
      // Its master died as it was asked (SIGKILL just before): the handle saw it go and closed its
      // client under the second try, which threw grpc's bare "Channel has been shut down".
      if (!exited || !(this.#lost !== null || master!.exitCode !== null || master!.signalCode !== null)) throw error;
      this.close();
      master!.ref();
      return untold(exited);
    }
    const { graceMs, killed } = asked;
    if (exited) {
      // Its exit is waited for (start() unref'd the child): the status stream, left open for its
      // end, may close before the master has exited.
      master!.ref();
      const exit = await exited;
      this.#stoppedAsAsked();
      return { ...exit, killed };
    }
    // Another process's master: gone once its socket stops answering (its grace, plus a margin).
    const deadline = Date.now() + graceMs + 15_000;
    const probe = new ControlClient(this.#client.target);
    try {
      while (Date.now() < deadline) {
        try {
          await probe.status({ timeoutMs: 1000 });
        } catch (error) {
          if (!(error instanceof ClusterdError && error.code === NOT_RUNNING)) throw error;
          this.#stoppedAsAsked();
          return { exitCode: null, signal: null, killed };
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      probe.close();
      this.close();
    }
    throw new ClusterdError('ERR_CLUSTERD_STOP_TIMEOUT', `cluster ${this.name} (master ${this.masterPid}) still answers ${graceMs + 15_000} ms after it was asked to stop`);
  }

  /**
   * Asks for the stop as `clusterd stop` does. A master that says its stop terms answers once every
   * worker has exited, naming those it killed; an older one answers at once, and one whose answer
   * was lost as it went (seen under load) said nothing: `killed` null for both. A status stream that
   * ends meanwhile is told once the answer has come: by then it is the stop asked for.
   */
  async #askToStop(): Promise<{ graceMs: number; killed: KilledWorker[] | null }> {
    const terms = this.#last.stopTerms;
    this.#askingToStop = true;
    try {
      if (!terms) {
        const asked = await askToStop(this.#client);
        this.#stopAsked = true;
        return { graceMs: asked?.graceMs ?? 0, killed: null };
      }
      const { outcome } = await askForOutcome(this.#client, { timeoutMs: terms.graceMs + STOP_MARGIN_MS, gone: this.#masterGone() });
      this.#stopAsked = true;
      return { graceMs: terms.graceMs, killed: outcome?.killed ?? null };
    } finally {
      this.#askingToStop = false;
      const ended = this.#endedWhileAsking;
      this.#endedWhileAsking = null;
      if (ended) this.#streamEnded(ended.error);
    }
  }

  /** Whether the master has exited: this process's child, or another's, as `clusterd stop` tells it. */
  #masterGone(): () => boolean | Promise<boolean> {
    const master = this.#master;
    if (master) return () => master.exitCode !== null || master.signalCode !== null;
    return masterGone(this.#client, this.masterPid);
  }

  /**
   * The cluster this handle's stop() asked to stop has stopped: 'stopped', once, unless the status
   * stream's end said so already (or said that the master went away). The handle is closed.
   */
  #stoppedAsAsked(): void {
    const emit = !this.#stopped && this.#lost === null;
    this.#stopped = true;
    this.close();
    if (emit) this.#deliver([['stopped']]);
  }

  /** Throws ERR_CLUSTERD_NOT_RUNNING once the handle cannot reach its master: closed, stopped, or its master gone. */
  #usable(): void {
    if (!this.#closed) return;
    const master = this.#master;
    const why =
      master && (master.exitCode !== null || master.signalCode !== null)
        ? `its master (pid ${this.masterPid}) has exited (${master.signalCode ?? `code ${master.exitCode}`})`
        : this.#lost
          ? `its master (pid ${this.masterPid}) went away: ${this.#lost.message}`
          : this.#stopped
            ? `it has stopped (master pid ${this.masterPid})`
            : 'this handle is closed (close() or stop() was called)';
    throw new ClusterdError(NOT_RUNNING, `cluster ${this.name}: ${why}`);
  }

  /**
   * Stops following the cluster; it keeps running. The handle no longer holds this process alive: a
   * master started by start() runs on as long as this process does, and stops gracefully when it exits.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watch?.cancel();
    this.#watch = null;
    this.#client.close();
  }

  /**
   * Emits `events` in order. These calls come from grpc-js's stream handlers: a listener's throw
   * escaping into them stopped the stream being read, and the handle went silent. A throw is
   * rethrown on its own tick instead (uncaught, as an EventEmitter's in a callback), and the
   * events after it are still emitted.
   */
  #deliver(events: ClusterEvent[]): void {
    for (const [name, ...args] of events) {
      try {
        (this.emit as (name: string, ...args: unknown[]) => boolean)(name, ...args);
      } catch (error) {
        process.nextTick(() => {
          throw error;
        });
      }
    }
  }

  /** Takes `next` as the cluster now, and returns the events that its change from the last one makes. */
  #changed(next: ClusterView): ClusterEvent[] {
    const events: ClusterEvent[] = [];
    // Built before the last one taken (a stream message that crossed #catchUp's answer): already
    // told, and taken as newer it would undo what was seen (a new worker's exit).
    if (next.uptimeMs < this.#last.uptimeMs) return events;
    const before = new Map(this.#last.workers.map((worker) => [worker.id, worker]));
    const now = new Map(next.workers.map((worker) => [worker.id, worker]));
    for (const [id, old] of before) {
      const current = now.get(id);
      if (old.pid > 0 && (!current || current.pid !== old.pid)) events.push(['worker-exit', { id, pid: old.pid }]);
    }
    for (const worker of next.workers) {
      const old = before.get(worker.id);
      const samePid = old?.pid === worker.pid;
      if (worker.sample && !(samePid && old?.sample && old.sample.time === worker.sample.time)) {
        events.push(['sample', { id: worker.id, pid: worker.pid, sample: worker.sample }]);
      }
      // Kept per id, and so on each of an id's rows (the old process and its successor): told once.
      const blocked = worker.lastBlocked;
      const news = blocked !== null && blocked.time !== this.#toldBlocked.get(worker.id);
      if (news) this.#toldBlocked.set(worker.id, blocked.time);
      if (news && blocked.time >= this.#madeAt) {
        // The app's innermost frame, as the blocking sites name it (the innermost frame is often V8's
        // or Node's); the process the watchdog caught, not its successor, which may be listed by now.
        const top = blockedFrame(blocked.frames, next.runtimePrefixes);
        const site = top ? { function: top.functionName, url: top.url, line: top.line } : null;
        events.push(['blocked', { id: worker.id, pid: blocked.pid || worker.pid, time: blocked.time, blockedMs: blocked.blockedMs, site, frames: blocked.frames, replaced: true }]);
      }
      // --report-blocked: one more block counted; the site seen last is where.
      if (samePid && old && worker.blocks > old.blocks) {
        const latest = [...worker.blockedSites].sort((a, b) => b.lastSeen - a.lastSeen)[0];
        events.push([
          'blocked',
          {
            id: worker.id,
            pid: worker.pid,
            time: latest?.lastSeen ?? Date.now(),
            blockedMs: latest?.maxMs ?? 0,
            site: latest ? { function: latest.function, url: latest.url, line: latest.line } : null,
            frames: [],
            replaced: false,
          },
        ]);
      }
    }
    this.#last = next;
    // Ready again: every worker ready, and not the same processes as at the last 'ready' (a reload,
    // restart, replacement or scale went through).
    if (next.workers.length > 0 && next.workers.every((worker: WorkerView) => worker.state === 'ready')) {
      const pids = next.workers.map((worker) => worker.pid).sort((a, b) => a - b).join(',');
      if (pids !== this.#readyPids) {
        this.#readyPids = pids;
        events.push(['ready', statusJson(next)]);
      }
    }
    return events;
  }
}

/** An operation's steps, keeping each old worker killed at --grace rather than drained in `killed`. */
function collectKilled(killed: KilledWorker[]): (progress: ProgressView) => void {
  return (progress) => {
    if (progress.killed) killed.push(progress.killed);
  };
}

/** One event a handle emits, with its arguments. */
type ClusterEvent = { [K in keyof ClusterEvents]: [K, ...ClusterEvents[K]] }[keyof ClusterEvents];

/**
 * `value` if it is a whole number from 1 to `max`; a UsageError otherwise (the wire's uint32 would
 * turn 2^32+1 into 1 and 1.9 into 1: another worker than the one asked for).
 */
function whole(what: string, value: unknown, max: number): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 1 && value <= max) return value;
  throw new UsageError(`${what} must be a whole number from 1 to ${max}, got ${typeof value === 'number' ? String(value) : typeof value}`);
}

/** A scale() string as `clusterd scale` takes it (`'4'`, `'+2'`, `'-1'`); the master checks the count it makes. */
function scaleSpec(text: string): string {
  try {
    return parseScaleSpec(text);
  } catch (error) {
    throw new UsageError(`scale(): ${(error as Error).message}`);
  }
}

function exitOf(child: ChildProcess): Promise<MasterExit> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ exitCode: child.exitCode, signal: child.signalCode });
  return new Promise((resolveExit) => child.once('exit', (exitCode, signal) => resolveExit({ exitCode, signal })));
}
