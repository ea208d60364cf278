// The master's view of one worker process: forks it, speaks the protocol, follows its output.
import { fork, type ChildProcess } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import { isatty } from 'node:tty';
import { healthRank, type WorkerLoad } from './balancers/choose.js';
import type { BalancedWorker, RawHandle } from './balancers/types.js';
import type { Listeners } from './listeners.js';
import type { LogSink } from './logs.js';
import { isAccepting, transition, type WorkerState } from './worker-state.js';
import { SETTINGS_ENV, isProtocolMessage, type MasterMessage, type WorkerSettings } from '../protocol.js';
import { parseWorkerMessage } from '../protocol/parse.js';
import type { Entry } from './entry.js';
import type { LoopSample } from '../loop/types.js';
import type { StackReport } from './status.js';
import { WatchdogLink, type BlockedReport } from './watchdog-link.js';
import { ClusterdError } from '../errors.js';

/** A blocked-loop episode as the watchdog caught it. */
export type BlockedInfo = StackReport & { time: number; blockedMs: number };

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
}

/**
 * Whether workers get a session of their own (`detached`: setsid). On a terminal they must: Ctrl-C
 * signals the terminal's whole foreground process group, and it should reach the master alone,
 * which drains the workers in order instead of having them all die at once. Anywhere else
 * (systemd, `start -d`, CI, a benchmark) they stay in the master's session, because Linux's
 * autogroup scheduler shares the CPU fairly between sessions, not between processes: with a
 * session per worker, the master competes as one group with whatever else runs in its session,
 * and each hand-off waits longer for it (measured in BENCHMARKS.md: 0.8x node:cluster's
 * connections per second, parity without).
 */
function onTerminal(): boolean {
  return isatty(0) || isatty(1) || isatty(2);
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
  readonly #watchdog: WatchdogLink;
  // Open connections as the worker's last ack reported them, and when.
  #ackedConnections = 0;
  #ackedAt = 0;
  // Its loop has gone silent (the watchdog thread said so), until it beats again.
  #stalled = false;
  #state: WorkerState = 'starting';
  readonly #child: ChildProcess;
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
    this.#child = fork(spec.entry.path, spec.args, {
      execArgv: spec.entry.execArgv,
      env: {
        ...process.env,
        CLUSTERD_WORKER_ID: String(spec.id),
        CLUSTERD_CLUSTER_NAME: spec.clusterName,
        [SETTINGS_ENV]: JSON.stringify(spec.settings),
      },
      // fd 4 is the watchdog thread's own line to the master: it works while the main thread is blocked.
      stdio: ['ignore', 'pipe', 'pipe', 'ipc', 'pipe'],
      detached: onTerminal(),
    });
    const pid = this.#child.pid ?? 0;
    const output = Promise.all([
      spec.logs.follow(this.#child.stdout!, { worker: this.id, pid, stream: 'stdout' }),
      spec.logs.follow(this.#child.stderr!, { worker: this.id, pid, stream: 'stderr' }, this.stderrTail),
    ]);
    this.#child.on('message', (message: unknown) => this.#onMessage(message));
    this.#watchdog = new WatchdogLink(this.#child.stdio[4] as Duplex);
    this.#watchdog.on('stall', () => {
      this.#stalled = true;
      this.#listeners.health(this);
    });
    this.#watchdog.on('close', () => {
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
    this.#watchdog.on('resume', () => {
      this.#stalled = false;
      // Connections `least` held back for a healthy worker may go to this one again.
      this.#listeners.activate(this);
    });
    this.#watchdog.on('blocked', (report: BlockedReport) => {
      // A long synchronous start-up is not a hung worker: --listen-timeout covers booting.
      if (this.#state !== 'ready') return;
      this.lastBlocked = { state: 'blocked', stack: report.stack, time: Date.now(), blockedMs: report.blockedMs };
      this.emit('blocked', this.lastBlocked);
    });
    // A failed send (channel closing under us) is reported here; exit handling covers it.
    this.#child.on('error', () => {});
    this.#child.once('exit', (code, signal) => {
      const from = this.#state;
      this.#state = transition(from, 'exited');
      this.#listeners.remove(this);
      void output.then(() => this.emit('exit', { code, signal, from } satisfies WorkerExit));
    });
  }

  get pid(): number {
    return this.#child.pid ?? 0;
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
    if (this.#watchdog.closed && this.#state !== 'exited') {
      throw new ClusterdError('ERR_CLUSTERD_WATCHDOG_CLOSED', `worker ${this.id} runs without its watchdog: its pipe (fd 4) was closed while it runs (did the app close fd 4?)`);
    }
    const reply = await this.#watchdog.requestStack(timeoutMs);
    return { state: reply.state, stack: reply.stack };
  }

  send(message: MasterMessage, handle?: RawHandle): boolean {
    if (!this.#child.connected) return false;
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
    if (this.#state !== 'exited') this.#child.kill('SIGKILL');
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
