// The master's view of one worker process: forks it, speaks the protocol, follows its output.
// Its state and what the supervisor and the balancers read of it are here; the fork is in
// worker-fork.ts, what it says over IPC in worker-messages.ts, its output in worker-output.ts, the
// operator's stack, profile and loop requests in worker-probes.ts, and its kills in worker-killer.ts.
import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { ChannelMisuse } from './channel-misuse.js';
import { healthRank, type WorkerLoad } from './balancers/choose.js';
import type { BalancedWorker, RawHandle } from './balancers/types.js';
import type { Listeners } from './listeners.js';
import { OutputTail, isMasterNote, type LogSink } from './logs.js';
import { isAccepting, transition, type WorkerState } from './worker-state.js';
import { WORKER_INSPECTOR_ARGS, type MasterMessage } from '../protocol.js';
import type { CpuProfile, LoopBreakdown, LoopSample } from '../loop/types.js';
import { LoopRequests } from './loop-requests.js';
import type { BlockedInfo, KilledWorker, StackReport } from './status.js';
import { WorkerInspector } from './inspector.js';
import { WorkerProbes } from './worker-probes.js';
import { followMessages } from './worker-messages.js';
import { followOutput, outputEnded } from './worker-output.js';
import { WorkerKiller } from './worker-killer.js';
import { HeartbeatWatch } from './heartbeat-watch.js';
import { endGroup } from '../system/group.js';
import { forkWorker, settleFailedFork, type ForkResult, type WatchSettings, type WorkerSpec } from './worker-fork.js';

/** Samples kept per worker for `status` history and `top` sparklines. */
export const HISTORY_LENGTH = 60;

export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The state the worker was in when it exited: `starting` means it failed to boot. */
  from: WorkerState;
  /** Set when the process could not be started at all: `spawn EAGAIN (resource temporarily unavailable)`. */
  error?: string;
  /** The master killed it (SIGKILL: --grace over, a forced stop, --listen-timeout, the watchdog). */
  killed: boolean;
  /**
   * The worker said the app closed its IPC channel (process.disconnect()), which ends the worker. The
   * app can send that message itself: describeExit believes it only of the exit such a close makes.
   */
  closedChannel?: boolean;
}

/**
 * Events: 'ready' once it can take traffic; 'listening' (boolean) when the app has closed every
 * server it listened on (false: not ready) or listens again (true); 'sample' (LoopSample) every stats interval;
 * 'blocked' (BlockedInfo) when the watchdog catches its loop blocked past the threshold; 'exit' (WorkerExit) once the process is gone,
 * its output fully read and its IPC channel closed (every message it sent routed), or 2 s after its exit
 * when a process it started holds either open (outputEnded).
 */
export class WorkerProcess extends EventEmitter implements BalancedWorker {
  readonly id: number;
  readonly generation: number;
  readonly startedAt = Date.now();
  /** When it was started on the monotonic clock: its uptime holds when the wall clock is stepped. */
  readonly #startedTick = performance.now();
  readyAt: number | null = null;
  /** When it got ready, on the monotonic clock, or null. */
  #readyTick: number | null = null;
  /** How long since it was started, by the monotonic clock (startedAt is the wall clock's, for people). */
  get uptimeMs(): number {
    return Math.round(performance.now() - this.#startedTick);
  }

  /** How long it has served (since it got ready; since it started, if it never did), by the monotonic clock. */
  get servedMs(): number {
    return Math.round(performance.now() - (this.#readyTick ?? this.#startedTick));
  }

  /** The last lines the worker wrote to stderr, to explain a failed boot or an exit. */
  readonly stderrTail = new OutputTail();
  /** The last lines it wrote to stdout: a failed boot's explanation where stderr has none of the app's. */
  readonly stdoutTail = new OutputTail();
  /** When it was asked to stop (stop()), or null. */
  stoppingAt: number | null = null;
  /** When its process ended (before the last of its output is read), or null. */
  exitedAt: number | null = null;
  /** The latest loop sample and up to HISTORY_LENGTH before it, oldest first. */
  readonly history: LoopSample[] = [];
  /** The last time the watchdog caught this worker's loop blocked, with the stack. */
  lastBlocked: BlockedInfo | null = null;
  /**
   * The worker it took its id over from (a reload, a restart, --max-memory), until its own first
   * sample: the id's figures stay that worker's last sample meanwhile (status.ts), rather than vanish
   * from /metrics and the totals for up to a stats interval. Dropped then, so that it can be freed.
   */
  predecessor: WorkerProcess | null = null;

  /**
   * What to show of its output when its boot or its replacement failed: its stderr's last lines, or,
   * where the app wrote nothing there (an app that logs with console.log and then exits, or never
   * listens), its stdout's, with the master's own notes after them.
   */
  lastOutput(): string[] {
    const errors = this.stderrTail.lines();
    if (errors.some((line) => !isMasterNote(line))) return errors;
    return [...this.stdoutTail.lines(), ...errors];
  }
  /** Null for a worker whose process never started. */
  readonly #watch: HeartbeatWatch | null = null;
  readonly #inspector: WorkerInspector | null = null;
  // Open connections as the worker's last ack reported them, and when.
  #ackedConnections = 0;
  #ackedAt = 0;
  // Its loop has gone silent (no heartbeat past the stall threshold), until it beats again.
  #stalled = false;
  #state: WorkerState = 'starting';
  /** The app closed every server it had listened on, by its own hand, as its last `listening` report said. */
  #closedEvery = false;
  /** Null when fork() threw: there is no process at all. */
  readonly #child: ChildProcess | null;
  readonly #listeners: Listeners;
  readonly #waitReady: boolean;
  readonly #logs: LogSink;
  readonly #killSignal: NodeJS.Signals;
  /** Its kills: SIGKILL, at --grace or by a forced stop, and what its drain had open then. */
  readonly #killer: WorkerKiller;
  /** How long its accepted samples cover in all (sample-bounds.ts: no more than it has run). */
  #sampledMs = 0;
  /** The runtime said the app called process.disconnect(): the channel's close that follows ends the worker. */
  #closedChannel = false;
  /** Its malformed messages and the handles it sent, logged at most once a minute. */
  readonly #misuse: ChannelMisuse;
  /** `clusterd loop` windows asked for and not answered yet. */
  readonly #loops: LoopRequests;
  /** Its stack, profile and loop requests, and whether its loop is blocked. */
  readonly #probes: WorkerProbes;

  constructor(spec: WorkerSpec) {
    super();
    this.id = spec.id;
    this.generation = spec.generation;
    this.#listeners = spec.listeners;
    this.#waitReady = spec.settings.waitReady;
    this.#logs = spec.logs;
    this.#killSignal = spec.killSignal;
    const started = forkWorker(spec);
    this.#child = started.child;
    this.#killer = new WorkerKiller({ id: this.id, pid: this.pid, logs: spec.logs, killSignal: this.#killSignal, child: started.child, state: () => this.#state });
    this.#loops = new LoopRequests({ id: this.id, pid: this.pid, send: (message) => this.send(message), turning: () => !this.blocked });
    this.#misuse = new ChannelMisuse({ id: this.id, pid: this.pid, logs: spec.logs });
    this.#probes = new WorkerProbes({
      id: this.id,
      pid: this.pid,
      logs: spec.logs,
      watchdogMs: spec.watch.watchdogMs,
      loops: this.#loops,
      inspector: () => this.#inspector,
      exited: () => this.exited,
      silentMs: () => this.silentMs,
      send: (message) => this.send(message),
    });
    if (started.child?.pid === undefined) {
      this.#failedToStart(started, spec.entry.cwd);
      return;
    }
    const child = started.child;
    const pid = child.pid ?? 0;
    spec.reaper?.add(pid);
    // Without clusterd's inspector flags (inspectorArgs), the user's own set the inspector up.
    const inspector = new WorkerInspector(pid, { ownFlags: !WORKER_INSPECTOR_ARGS.every((arg) => spec.entry.execArgv.includes(arg)) });
    this.#inspector = inspector;
    const output = followOutput(child, { id: this.id, pid, logs: spec.logs }, { stdoutTail: this.stdoutTail, stderrTail: this.stderrTail, intercept: (line) => inspector.intercept(line) });
    const channelClosed = followMessages(child, {
      worker: this,
      logs: this.#logs,
      listeners: this.#listeners,
      waitReady: this.#waitReady,
      killSignal: this.#killSignal,
      misuse: this.#misuse,
      loops: this.#loops,
      probes: this.#probes,
      markReady: () => this.#markReady(),
      acked: (connections) => {
        this.#ackedConnections = connections;
        this.#ackedAt = Date.now();
      },
      listening: (listening) => {
        this.#closedEvery = !listening;
        this.#followListening();
      },
      draining: (report) => this.#killer.drained(report),
      sampleContext: () => ({ uptimeMs: performance.now() - this.#startedTick, sampledMs: this.#sampledMs, previous: this.history.at(-1) ?? null }),
      sampled: (sample) => this.#sampled(sample),
      disconnecting: () => {
        this.#closedChannel = true;
      },
    });
    this.#watch = this.#watchHeartbeat(child.stdio[4] as Readable, spec.watch, inspector);
    // A failed send (channel closing under us) is reported here; exit handling covers it.
    child.on('error', () => {});
    child.once('exit', (code, signal) => {
      this.exitedAt = Date.now();
      endGroup(pid);
      spec.reaper?.remove(pid);
      inspector.close();
      this.#watch?.close();
      this.#loops.exited();
      const from = this.#state;
      this.#state = transition(from, 'exited');
      this.#listeners.remove(this);
      // Its last lines and its last messages first (a 'disconnecting' says why it went), but not waiting
      // for good on a process that holds the pipes or the channel open (outputEnded).
      void outputEnded({ output, channel: channelClosed }, { id: this.id, pid, logs: this.#logs }).then(() =>
        this.emit('exit', { code, signal, from, killed: this.#killer.killed, closedChannel: this.#closedChannel } satisfies WorkerExit),
      );
    });
  }

  /** Follows the worker's heartbeat (src/loop/heartbeat.ts): stalls for balancing, silences for the watchdog and --report-blocked. */
  #watchHeartbeat(pipe: Readable, settings: WatchSettings, inspector: WorkerInspector): HeartbeatWatch {
    return new HeartbeatWatch(pipe, settings, {
      id: this.id,
      pid: this.pid,
      logs: this.#logs,
      inspector,
      state: () => this.#state,
      readyTick: () => this.#readyTick,
      measuring: () => this.#loops.pending,
      onStall: () => {
        this.#stalled = true;
        this.#listeners.health(this);
      },
      onResume: () => {
        this.#stalled = false;
        // Connections `least` held back for a healthy worker may go to this one again.
        this.#listeners.activate(this);
      },
      onClose: () => {
        // No heartbeat left to say it resumed: never let a stale flag hold connections back.
        this.#stalled = false;
        // Connections `least` and `fair` held back for it may go to it again (as on a resume).
        if (this.#state === 'ready') this.#listeners.activate(this);
      },
      onBlocked: (info) => {
        this.lastBlocked = { ...info, pid: this.pid };
        this.emit('blocked', this.lastBlocked);
      },
      onBlocking: (report) => this.emit('blocking', report),
    });
  }

  /** fork() failed: no process runs, so this is a failed boot, reported as an exit from `starting` with the errno (settleFailedFork). */
  #failedToStart(started: ForkResult, cwd: string): void {
    settleFailedFork(started, cwd, (error) => {
      this.#state = transition(this.#state, 'exited');
      this.emit('exit', { code: null, signal: null, from: 'starting', error, killed: false } satisfies WorkerExit);
    });
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

  /** The main thread's JavaScript stack now, through the worker's inspector (works while its loop is blocked). */
  requestStack(): Promise<StackReport> {
    return this.#probes.stack();
  }

  /** A CPU profile of the worker's main thread over `durationMs`, through its inspector. */
  profile(durationMs: number, intervalUs?: number, signal?: AbortSignal): Promise<CpuProfile> {
    return this.#probes.profile(durationMs, intervalUs, signal);
  }

  /** Whether a CPU profile (profile()) or a loop measurement (measureLoop()) of it runs now: another is refused. */
  get measuring(): { profile: boolean; loop: boolean } {
    return this.#probes.measuring;
  }

  /** How long its loop has been silent, in ms (0 when it beats, or sends no heartbeat). */
  get silentMs(): number {
    return this.#watch?.silentMs ?? 0;
  }

  /** Whether its loop is blocked now: silent for a second, or past --watchdog when that is shorter. */
  get blocked(): boolean {
    return this.#probes.blocked;
  }

  /** `clusterd loop`: where its loop spends the next `durationMs` (WorkerProbes.measureLoop). */
  measureLoop(durationMs: number, signal?: AbortSignal): Promise<LoopBreakdown> {
    return this.#probes.measureLoop(durationMs, signal);
  }

  send(message: MasterMessage, handle?: RawHandle): boolean {
    if (!this.#child?.connected) return false;
    // Node's false means "queued behind others" (a handle waiting for its ack, a full pipe), not
    // "lost": the message goes out in order. Read as lost, a connection sent on was handed to a
    // second worker while Node still delivered it to the first.
    this.#child.send(message, handle as never);
    return true;
  }

  /**
   * Graceful: out of balancing at once, then drain and exit on its own. A worker still starting has
   * nothing to drain and may not hear the request before its app is loaded: it is killed (waited
   * for until --grace it read as a blocked loop, exit 5; a scale down that overtook a scale up left
   * it 'stopping' for the whole --grace).
   */
  stop(): void {
    if (this.#state === 'starting') return this.kill();
    if (this.#state === 'stopping' || this.#state === 'exited') return;
    // A session left connected would make Node wait for it at exit ("Waiting for the debugger...").
    this.#inspector?.close();
    this.#state = transition(this.#state, 'stopping');
    this.stoppingAt = Date.now();
    this.#listeners.remove(this);
    this.send({ cmd: 'NODE_clusterd:shutdown', signal: this.#killSignal });
  }

  /** Immediate: SIGKILL, for a forced stop, or a worker that never got ready. */
  kill(): void {
    this.#killer.kill();
  }

  /** --grace is over and it has not exited: SIGKILL, logging what its drain still had open (WorkerKiller). */
  expireGrace(graceMs: number): void {
    this.#killer.expireGrace(graceMs);
  }

  /** A forced stop (a second stop signal): SIGKILL now, logging what it still had open as at --grace. */
  forceKill(): void {
    this.#killer.forceKill();
  }

  /** What it was killed with, at --grace or by a forced stop, as the master said it; null if it was not. */
  get killReport(): KilledWorker | null {
    return this.#killer.killReport;
  }

  /** A loop sample (every stats interval): its history, and its health rank for the balancers. */
  #sampled(sample: LoopSample): void {
    this.#sampledMs += sample.intervalMs;
    const rank = healthRank(this.load());
    this.history.push(sample);
    if (this.history.length > HISTORY_LENGTH) this.history.shift();
    this.predecessor = null;
    if (healthRank(this.load()) !== rank) this.#listeners.health(this);
    this.emit('sample', sample);
  }

  #markReady(): void {
    // Killed while starting (called off, timed out): a ready that was already on its way is not taken.
    if (this.#state !== 'starting' || this.#killer.killed) return;
    this.#state = transition(this.#state, 'ready');
    this.readyAt = Date.now();
    this.#readyTick = performance.now();
    // A stall of its start-up is over (the loop turned to get here), whether or not the watchdog
    // thread has said so yet.
    this.#stalled = false;
    this.#listeners.activate(this);
    this.emit('ready');
    // --wait-ready: the app said it is ready after it had closed every server it listened on.
    this.#followListening();
  }

  /**
   * Every server the app listened on has closed by its own hand (not in a drain of clusterd's, which
   * the runtime does not report): the worker is not ready, and no balancer gives it a connection
   * (its closes took it off each address already), until it listens again. It is neither killed
   * nor restarted: the app may listen again, as some do on a change of configuration.
   */
  #followListening(): void {
    const pid = this.pid;
    if (this.#closedEvery && this.#state === 'ready') {
      this.#state = transition(this.#state, 'not-listening');
      if (this.#misuse.listeningLogged()) this.#logs.event('worker-not-listening', `worker ${this.id} (pid ${pid}) closed every server it listened on: not ready until it listens again`, { worker: this.id, pid }, 'warn');
      this.emit('listening', false);
    } else if (!this.#closedEvery && this.#state === 'not-listening') {
      this.#state = transition(this.#state, 'ready');
      if (this.#misuse.listeningLogged()) this.#logs.event('worker-listening', `worker ${this.id} (pid ${pid}) listens again: ready`, { worker: this.id, pid }, 'info');
      // Connections held back while it was not ready (rr, least, sticky) may go to it; under fair it gets a copy.
      this.#listeners.activate(this);
      this.emit('listening', true);
    }
  }
}
