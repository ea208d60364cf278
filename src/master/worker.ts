// The master's view of one worker process: forks it, speaks the protocol, follows its output.
import { fork, type ChildProcess } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import { getSystemErrorMap } from 'node:util';
import { healthRank, type WorkerLoad } from './balancers/choose.js';
import type { BalancedWorker, RawHandle } from './balancers/types.js';
import type { Listeners } from './listeners.js';
import type { LogSink } from './logs.js';
import { isAccepting, transition, type WorkerState } from './worker-state.js';
import { SETTINGS_ENV, isProtocolMessage, type MasterMessage, type WorkerSettings } from '../protocol.js';
import { parseWorkerMessage } from '../protocol/parse.js';
import type { Entry } from './entry.js';
import type { LoopSample } from '../loop/types.js';
import type { BlockedInfo, StackReport } from './status.js';
import { WatchdogLink, type BlockedReport } from './watchdog-link.js';
import { ClusterdError } from '../errors.js';
import { endGroup } from '../system/group.js';
import { nativeHelper } from '../system/native.js';


/** A watchdog pipe that closes this long before its worker's exit is reported as lost. */
const WATCHDOG_EXIT_GRACE_MS = 1000;

/** A worker's malformed messages are logged at most this often. */
const MALFORMED_LOG_MS = 60_000;

/** Samples kept per worker for `status` history and `top` sparklines. */
export const HISTORY_LENGTH = 60;

export interface WorkerSpec {
  id: number;
  generation: number;
  clusterName: string;
  entry: Entry;
  args: readonly string[];
  settings: WorkerSettings;
  listeners: Listeners;
  logs: LogSink;
}

export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The state the worker was in when it exited: `starting` means it failed to boot. */
  from: WorkerState;
  /** Set when the process could not be started at all: `spawn EAGAIN (resource temporarily unavailable)`. */
  error?: string;
}

/**
 * Every worker leads a process group of its own, so that ending the worker ends whatever it
 * started (endGroup). With the native helper the worker's runtime calls setpgid(0, 0) before the
 * app loads, and stays in the master's session; without it the fork itself makes one (`detached`:
 * setsid), a session of its own. Sessions cost speed on kernels with autogroup scheduling, which
 * shares the CPU fairly between sessions rather than processes: a worker in a session of its own
 * competes as a group of its own with the master and everything else (measured in BENCHMARKS.md:
 * 0.8-0.9x the connections per second). Either way Ctrl-C on a terminal, which signals the
 * foreground process group, reaches the master alone, and it drains the workers in order.
 */
function ownSession(): boolean {
  return nativeHelper() === null;
}

/** Forks the worker's process; never throws (the error is returned, to be reported as a failed boot). */
function forkWorker(spec: WorkerSpec): { child: ChildProcess | null; error: unknown } {
  try {
    const child = fork(spec.entry.path, spec.args, {
      execArgv: spec.entry.execArgv,
      env: {
        ...process.env,
        CLUSTERD_WORKER_ID: String(spec.id),
        CLUSTERD_CLUSTER_NAME: spec.clusterName,
        [SETTINGS_ENV]: JSON.stringify(spec.settings),
      },
      // fd 4 is the watchdog thread's own line to the master: it works while the main thread is blocked.
      stdio: ['ignore', 'pipe', 'pipe', 'ipc', 'pipe'],
      detached: ownSession(),
    });
    return { child, error: null };
  } catch (error) {
    return { child: null, error };
  }
}

/** `spawn EAGAIN (resource temporarily unavailable)`: the errno's name and what it means. */
export function describeSpawnError(error: unknown): string {
  const { code, errno, message } = (error ?? {}) as NodeJS.ErrnoException;
  if (typeof code !== 'string') return String(message ?? error);
  const meaning = typeof errno === 'number' ? getSystemErrorMap().get(errno)?.[1] : undefined;
  return `spawn ${code}${meaning ? ` (${meaning})` : ''}`;
}

/**
 * Events: 'ready' once it can take traffic; 'sample' (LoopSample) every stats interval;
 * 'blocked' (BlockedInfo) when the watchdog catches its loop blocked past the threshold; 'exit' (WorkerExit) once the process is gone and
 * its output fully written.
 */
export class WorkerProcess extends EventEmitter implements BalancedWorker {
  readonly id: number;
  readonly generation: number;
  readonly startedAt = Date.now();
  readyAt: number | null = null;
  /** The last lines the worker wrote to stderr, to explain a failed boot. */
  readonly stderrTail: string[] = [];
  /** The latest loop sample and up to HISTORY_LENGTH before it, oldest first. */
  readonly history: LoopSample[] = [];
  /** The last time the watchdog caught this worker's loop blocked, with the stack. */
  lastBlocked: BlockedInfo | null = null;
  /** Null for a worker whose process never started. */
  readonly #watchdog: WatchdogLink | null;
  // Open connections as the worker's last ack reported them, and when.
  #ackedConnections = 0;
  #ackedAt = 0;
  // Its loop has gone silent (the watchdog thread said so), until it beats again.
  #stalled = false;
  #state: WorkerState = 'starting';
  /** Null when fork() threw: there is no process at all. */
  readonly #child: ChildProcess | null;
  readonly #listeners: Listeners;
  readonly #waitReady: boolean;
  readonly #logs: LogSink;
  #malformedCount = 0;
  #malformedLoggedAt = -Infinity;

  constructor(spec: WorkerSpec) {
    super();
    this.id = spec.id;
    this.generation = spec.generation;
    this.#listeners = spec.listeners;
    this.#waitReady = spec.settings.waitReady;
    this.#logs = spec.logs;
    const started = forkWorker(spec);
    this.#child = started.child;
    if (started.child?.pid === undefined) {
      this.#watchdog = null;
      this.#failedToStart(started);
      return;
    }
    const child = started.child;
    const pid = child.pid ?? 0;
    const output = Promise.all([
      spec.logs.follow(child.stdout!, { worker: this.id, pid, stream: 'stdout' }),
      spec.logs.follow(child.stderr!, { worker: this.id, pid, stream: 'stderr' }, this.stderrTail),
    ]);
    child.on('message', (message: unknown) => this.#onMessage(message));
    const watchdog = new WatchdogLink(child.stdio[4] as Duplex);
    this.#watchdog = watchdog;
    watchdog.on('stall', (silentMs: number) => {
      // A stall of its start-up reported after the worker said it was ready: the loop has turned
      // since (to say so), and the thread's 'resume' is on its way. Balancing around it would
      // give the other workers a burst of connections for nothing.
      if (this.readyAt !== null && Date.now() - silentMs < this.readyAt) return;
      this.#stalled = true;
      this.#listeners.health(this);
    });
    watchdog.on('close', () => {
      // No thread left to say it resumed: never let a stale flag hold connections back.
      this.#stalled = false;
      // The pipe also closes when the worker exits; one that closes while it runs (the app closed
      // fd 4, or the thread died) leaves the worker without its watchdog: say so once.
      setTimeout(() => {
        if (this.#state === 'exited') return;
        this.#logs.event(
          'watchdog-lost',
          `worker ${this.id} (pid ${this.pid}): its watchdog pipe (fd 4) closed while it runs (did the app close fd 4?); blocked-loop detection and \`clusterd stack\` are off for it`,
          { worker: this.id, pid: this.pid },
          'warn',
        );
      }, WATCHDOG_EXIT_GRACE_MS).unref();
    });
    watchdog.on('resume', () => {
      this.#stalled = false;
      // Connections `least` held back for a healthy worker may go to this one again.
      this.#listeners.activate(this);
    });
    watchdog.on('blocked', (report: BlockedReport) => {
      // A long synchronous start-up is not a hung worker: --listen-timeout covers booting.
      if (this.#state !== 'ready') return;
      this.lastBlocked = { state: 'blocked', stack: report.stack, time: Date.now(), blockedMs: report.blockedMs };
      this.emit('blocked', this.lastBlocked);
    });
    // A failed send (channel closing under us) is reported here; exit handling covers it.
    child.on('error', () => {});
    child.once('exit', (code, signal) => {
      endGroup(pid);
      const from = this.#state;
      this.#state = transition(from, 'exited');
      this.#listeners.remove(this);
      void output.then(() => this.emit('exit', { code, signal, from } satisfies WorkerExit));
    });
  }

  /**
   * fork() failed: no process runs, so this is a failed boot, reported as an exit from `starting`
   * with the errno. Node throws some spawn errors (ENOMEM) and reports the rest (EAGAIN at the
   * process limit, EMFILE, ENOENT) with an 'error' event on the next tick, after handing back a
   * ChildProcess without a pid; 'exit' never comes for it. Either way the exit is emitted
   * asynchronously, once the supervisor listens.
   */
  #failedToStart({ child, error }: { child: ChildProcess | null; error: unknown }): void {
    const settle = (cause: unknown): void => {
      this.#state = transition(this.#state, 'exited');
      this.emit('exit', { code: null, signal: null, from: 'starting', error: describeSpawnError(cause) } satisfies WorkerExit);
    };
    if (child === null) {
      process.nextTick(settle, error);
      return;
    }
    // With EAGAIN, Node has already opened the stdio pipes and the IPC channel, with nobody at the
    // other end (with EMFILE, none): close whatever there is, or each failed fork leaks descriptors.
    child.once('error', settle);
    // Anything after it (the channel closing) is moot, and must not be an unheard 'error'.
    child.on('error', () => {});
    for (const stream of child.stdio ?? []) stream?.destroy();
    if (child.connected) child.disconnect();
  }

  get pid(): number {
    return this.#child?.pid ?? 0;
  }

  get state(): WorkerState {
    return this.#state;
  }

  get accepting(): boolean {
    return isAccepting(this.#state, this.#waitReady);
  }

  get exited(): boolean {
    return this.#state === 'exited';
  }

  /**
   * Its latest known load, for `least` and `fair`: connections from the fresher of its last ack and
   * sample. The lag of a sample that began before the worker was ready is not counted: it measures
   * the app's start-up (loading modules blocks the loop), not how the worker serves.
   */
  load(): WorkerLoad {
    const sample = this.history.at(-1);
    const connections = sample && sample.time > this.#ackedAt ? sample.http.connections : this.#ackedConnections;
    const serving = sample !== undefined && this.readyAt !== null && sample.time - sample.intervalMs >= this.readyAt;
    return { connections, lagP99: serving ? sample.lag.p99 : 0, elu: sample?.elu ?? 0, stalled: this.#stalled };
  }

  /** The main thread's JavaScript stack now, captured by the watchdog thread (works while blocked). */
  async requestStack(timeoutMs: number): Promise<StackReport> {
    if (this.#watchdog === null) throw new ClusterdError('ERR_CLUSTERD_WATCHDOG_CLOSED', `worker ${this.id} never started`);
    if (this.#watchdog.closed && this.#state !== 'exited') {
      throw new ClusterdError('ERR_CLUSTERD_WATCHDOG_CLOSED', `worker ${this.id} runs without its watchdog: its pipe (fd 4) was closed while it runs (did the app close fd 4?)`);
    }
    const reply = await this.#watchdog.requestStack(timeoutMs);
    return { state: reply.state, stack: reply.stack };
  }

  send(message: MasterMessage, handle?: RawHandle): boolean {
    if (!this.#child?.connected) return false;
    return this.#child.send(message, handle as never);
  }

  /** Graceful: out of balancing at once, then drain and exit on its own. */
  stop(): void {
    if (this.#state === 'stopping' || this.#state === 'exited') return;
    this.#state = transition(this.#state, 'stopping');
    this.#listeners.remove(this);
    this.send({ cmd: 'clusterd:shutdown' });
  }

  /** Immediate: SIGKILL, for --grace expiry, a forced stop, or a worker that never got ready. */
  kill(): void {
    if (this.#state !== 'exited') this.#child?.kill('SIGKILL');
  }

  #onMessage(message: unknown): void {
    if (message === 'ready') {
      if (this.#waitReady) this.#markReady();
      return;
    }
    if (!isProtocolMessage(message)) return;
    const parsed = parseWorkerMessage(message);
    if (!parsed.ok) {
      this.#malformed(message.cmd, parsed.error);
      return;
    }
    const msg = parsed.value;
    switch (msg.cmd) {
      case 'clusterd:listen':
        this.#listeners.listen(this, msg.seq, msg.query);
        break;
      case 'clusterd:close':
        this.#listeners.close(this, msg.key);
        break;
      case 'clusterd:ack':
        this.#ackedConnections = msg.connections;
        this.#ackedAt = Date.now();
        this.#listeners.ack(this, msg.key, msg.id, msg.accepted);
        break;
      case 'clusterd:ready':
        if (!this.#waitReady) this.#markReady();
        break;
      case 'clusterd:full':
      case 'clusterd:under':
      case 'clusterd:load':
        this.#listeners.report(this, msg);
        break;
      case 'clusterd:stats': {
        const rank = healthRank(this.load());
        this.history.push(msg.sample);
        if (this.history.length > HISTORY_LENGTH) this.history.shift();
        if (healthRank(this.load()) !== rank) this.#listeners.health(this);
        this.emit('sample', msg.sample);
        break;
      }
    }
  }

  /**
   * The app sent something that looks like clusterd's protocol but is not (or the runtime is
   * broken): it is dropped. Logged at once the first time, then at most once a minute with a count,
   * so that a worker sending garbage in a loop cannot flood the log.
   */
  #malformed(cmd: string, error: string): void {
    this.#malformedCount++;
    const now = Date.now();
    if (now - this.#malformedLoggedAt < MALFORMED_LOG_MS) return;
    this.#malformedLoggedAt = now;
    this.#logs.event(
      'malformed-message',
      `worker ${this.id} (pid ${this.pid}) sent a malformed ${JSON.stringify(cmd.slice(0, 40))} message (${error}); dropped (${this.#malformedCount} so far)`,
      { worker: this.id, pid: this.pid, cmd: cmd.slice(0, 40), error, count: this.#malformedCount },
      'warn',
    );
  }

  #markReady(): void {
    if (this.#state !== 'starting') return;
    this.#state = transition(this.#state, 'ready');
    this.readyAt = Date.now();
    // A stall of its start-up is over (the loop turned to get here), whether or not the watchdog
    // thread has said so yet.
    this.#stalled = false;
    this.#listeners.activate(this);
    this.emit('ready');
  }
}
