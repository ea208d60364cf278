// The master's view of the cluster, as the control plane serves it (Status, Watch, metrics).
import type { CpuProfile, LoopBreakdown, LoopSample } from '../loop/types.js';
import type { BlockedSite } from './blocked-sites.js';
import type { LoopState, StackFrame } from '../loop/types.js';
import type { WorkerState } from './worker-state.js';
import type { Supervisor } from './supervisor.js';
import { formatAddress } from '../address.js';
import type { WaitingWorker } from './waiting.js';
import { countReady } from '../control/worker-rows.js';
import { masterUsage, type MasterUsage } from '../system/own-usage.js';

export type { WaitingWorker } from './waiting.js';
export type { MasterUsage } from '../system/own-usage.js';

export interface WorkerStatus {
  id: number;
  pid: number;
  state: WorkerState;
  /** Code generation: 1 at start, +1 per reload. */
  generation: number;
  startedAt: number;
  uptimeMs: number;
  /** Times this worker id has been replaced after an unexpected exit (since the master started). */
  restarts: number;
  /** Times this worker id has been replaced for --max-memory (since the master started): not in `restarts`. */
  memoryReplacements: number;
  /** The latest sample, null until the first one arrives. */
  sample: LoopSample | null;
  /**
   * Until its first sample, the latest of the worker it replaced (a reload, a restart, --max-memory),
   * else null: /metrics exports it for the id, and the totals count it once that worker has exited.
   * The master's own: clients get `sample` alone.
   */
  inherited: LoopSample | null;
  /** Up to the last 60 samples, oldest first. */
  history: LoopSample[];
  /** Where this worker id's loop was caught blocked over the last 5 minutes, worst first. */
  blockedSites: BlockedSite[];
  /** How many times this worker id's loop was caught blocked since the master started. */
  blocks: number;
  /**
   * How long its loop has been silent now, in ms, when it is ready and that counts as blocked (a second, or past
   * --watchdog when that is shorter: as `profile` and `loop` judge it); 0 while it turns. The sample
   * cannot say it: a blocked loop sends none, so the last one (from before the block) stands.
   */
  blockedMs: number;
}

export interface ClusterTotals {
  workers: number;
  /** Workers ready and whose loop is not blocked now: what /readyz and /metrics count ready. */
  ready: number;
  /** Ready workers whose loop is blocked now (blockedMs > 0): not in `ready`. */
  blocked: number;
  /** The worker count asked for (-i, scale): above `workers` while an id waits to be restarted. */
  desired: number;
  rps: number;
  inflight: number;
  connections: number;
  rss: number;
  restarts: number;
  memoryReplacements: number;
}

/** A worker id's counters since the master started; an id keeps them while no process holds it. */
export interface WorkerCounts {
  id: number;
  restarts: number;
  memoryReplacements: number;
  blocks: number;
}

export interface ClusterStatus {
  name: string;
  masterPid: number;
  startedAt: number;
  uptimeMs: number;
  entry: string;
  balance: string;
  statsIntervalMs: number;
  workers: WorkerStatus[];
  totals: ClusterTotals;
  /** Where the app's servers listen through the master: `host:port`, or a unix socket's path. */
  addresses: string[];
  /**
   * Every worker id that has a process or a count, in id order: one crash-looping between two backoff
   * attempts, or scaled away, has no process but keeps its counts, whose series must not come and go.
   */
  counts: WorkerCounts[];
  /** The ids asked for that wait to be restarted, in id order: `status` names them, as it cannot list a process. */
  waiting: WaitingWorker[];
  /** The master process's own memory and CPU (not in `totals`, which sum the workers'). */
  master: MasterUsage;
  /**
   * What a stop of it will take, for `clusterd stop`'s deadline. Null from a source that does not say
   * (a stand-in for a master older than the field, in tests): the wire leaves it out.
   */
  stopTerms: StopTerms | null;
}

/** How long a stop may take: the master's --grace, in ms. */
export interface StopTerms {
  graceMs: number;
}

/** What the control plane needs from the master to report on it. */
export interface ControlSource {
  status(): ClusterStatus;
  /** Calls `listener` after each new sample or worker state change; returns the unsubscribe. */
  onChange(listener: () => void): () => void;
}

/** One frame of a worker's JavaScript stack, as the watchdog captures it (1-based line/column). */
export type { StackFrame } from '../loop/types.js';

/** A worker's main-thread stack: idle in the event loop, busy running JS, or blocked past the watchdog threshold. */
export interface StackReport {
  state: LoopState;
  stack: StackFrame[];
}

/**
 * A blocked-loop episode as the watchdog caught it: when (epoch ms), how long (ms), and where; `error`
 * (with an empty stack) when the main thread could not be paused (inside a long native call); `pid`,
 * the process it caught (its id's report outlives it: the replacement serves under the same id).
 * `stack` is where the block is filed, as --report-blocked files it: without `entryFrame`, the innermost
 * frame caught when that was at its function's entry (a function called after a JSON.parse, which had
 * run nothing); the log line has both.
 */
export type BlockedInfo = StackReport & { time: number; blockedMs: number; pid: number; error?: string; entryFrame?: StackFrame };


/** How long a ready worker's loop has been blocked now, 0 if it is not: a start-up's silence is --listen-timeout's business, a drain's the grace's. */
export function blockedMs(worker: { state: WorkerState; blocked: boolean; silentMs: number }): number {
  return worker.state === 'ready' && worker.blocked ? worker.silentMs : 0;
}

/** Builds the control plane's snapshot: every live worker process, serving or not, by id. */
export function buildStatus(supervisor: Supervisor): ClusterStatus {
  const now = Date.now();
  const processes = supervisor.processes().sort((a, b) => a.id - b.id || a.startedAt - b.startedAt);
  const workers: WorkerStatus[] = processes.map((worker) => ({
      id: worker.id,
      pid: worker.pid,
      state: worker.state,
      generation: worker.generation,
      startedAt: worker.startedAt,
      uptimeMs: worker.uptimeMs,
      restarts: supervisor.restarts(worker.id),
      memoryReplacements: supervisor.memoryReplacements(worker.id),
      sample: worker.history.at(-1) ?? null,
      inherited: worker.history.length === 0 ? (worker.predecessor?.history.at(-1) ?? null) : null,
      history: [...worker.history],
      blockedSites: supervisor.blockedSites.sites(worker.id, now),
      blocks: supervisor.blockedSites.total(worker.id),
      blockedMs: blockedMs(worker),
    }));
  // A replacement with no sample yet counts the last one of the worker it replaced once that one has
  // exited (while it drains, its own row counts it): the sums no longer dip after each replacement.
  const counted = processes.map((worker) => worker.history.at(-1) ?? (worker.predecessor?.state === 'exited' ? worker.predecessor.history.at(-1) : undefined) ?? null);
  const sum = (pick: (sample: LoopSample) => number): number => counted.reduce((total, sample) => total + (sample ? pick(sample) : 0), 0);
  const countedIds = new Set([
    ...Array.from({ length: supervisor.desired }, (_, index) => index + 1),
    ...workers.map((worker) => worker.id),
    ...supervisor.restartedIds(),
    ...supervisor.memoryReplacedIds(),
    ...supervisor.blockedSites.ids(),
  ]);
  const { config } = supervisor;
  return {
    name: config.name,
    masterPid: process.pid,
    startedAt: supervisor.startedAt,
    uptimeMs: supervisor.uptimeMs,
    entry: config.entry.path,
    balance: config.balance,
    statsIntervalMs: config.statsIntervalMs,
    workers,
    totals: {
      workers: workers.length,
      // A blocked loop serves nothing: it counts apart, as /readyz and /metrics count it.
      ...countReady(workers),
      desired: supervisor.desired,
      rps: sum((sample) => sample.http.rps),
      inflight: sum((sample) => sample.http.inflight),
      connections: sum((sample) => sample.http.connections),
      rss: sum((sample) => sample.memory.rss),
      // Every id's, scaled away or waiting to be restarted included: a counter never goes down.
      restarts: supervisor.restartsTotal(),
      memoryReplacements: supervisor.memoryReplacementsTotal(),
    },
    addresses: supervisor.addresses().map(formatAddress),
    counts: [...countedIds]
      .sort((a, b) => a - b)
      .map((id) => ({ id, restarts: supervisor.restarts(id), memoryReplacements: supervisor.memoryReplacements(id), blocks: supervisor.blockedSites.total(id) })),
    waiting: Array.from({ length: supervisor.desired }, (_, index) => supervisor.slot(index + 1)).flatMap((slot) =>
      slot && !slot.worker && !slot.successor && slot.restartAt !== null
        ? [{ id: slot.id, crashes: Math.max(1, slot.attempt), restartInMs: Math.max(0, slot.restartAt - now), blockedSites: supervisor.blockedSites.sites(slot.id, now) }]
        : [],
    ),
    master: masterUsage(),
    stopTerms: { graceMs: config.graceMs },
  };
}

/** A worker's output line as the master keeps it for `clusterd logs`. */
export interface LogEntry {
  time: string;
  worker: number;
  pid: number;
  stream: 'stdout' | 'stderr';
  message: string;
}

/** Progress of a reload or restart, one message per step. */
export interface OperationProgress {
  id: number;
  phase: 'starting' | 'draining' | 'replaced' | 'failed';
  pid: number;
  generation: number;
  message: string;
  /** On 'replaced': the old worker, when it was killed at --grace rather than drained. */
  killed?: KilledWorker;
}

/** A worker killed (SIGKILL) while it drained, at --grace or by a forced stop, and the master's line for it. */
export interface KilledWorker {
  id: number;
  pid: number;
  /** `worker 1 (pid 4121): --grace 10s over: killed (SIGKILL), destroying 2 WebSocket connections`. */
  message: string;
}

/** A scale done: the worker count now, and the workers it took away that were killed at --grace rather than drained. */
export interface ScaleOutcome {
  workers: number;
  killed: KilledWorker[];
}

/** How the cluster's stop went: the master's exit code, and the workers it killed rather than drained. */
export interface StopOutcome {
  exitCode: number;
  killed: KilledWorker[];
}

/** A worker whose loop is blocked is not profiled or measured: its stack comes back instead. */
export type BlockedStack = StackReport & { blockedMs: number };

/** What `clusterd profile` gets: the profile, or the stack of a loop too blocked to profile. */
export type ProfileOutcome = { profile: CpuProfile; blocked?: undefined } | { profile?: undefined; blocked: BlockedStack };

/** What `clusterd loop` gets: the breakdown, or the stack of a loop too blocked to measure. */
export type LoopOutcome = { breakdown: LoopBreakdown; blocked?: undefined } | { breakdown?: undefined; blocked: BlockedStack };

/**
 * The operations the control plane offers (issue 4). Each rejects with a ClusterdError whose
 * `code` and `exitCode` say what went wrong (unknown worker: NOT_FOUND; a reload already
 * running: ERR_CLUSTERD_BUSY; bad count: USAGE; a replacement that failed to boot: BootError
 * with `lastOutput`).
 */
export interface ControlOperations {
  /** `who`: who asked (the control socket, or a TCP peer), for the master's log. */
  reload(options: { parallel: number }, onProgress: (progress: OperationProgress) => void, who?: string): Promise<{ generation: number; replaced: number }>;
  restart(id: number, onProgress: (progress: OperationProgress) => void, who?: string): Promise<{ pid: number }>;
  /** `N`, `+K` or `-K`; resolves with the new worker count once it is reached, and the workers taken away that were killed at --grace. */
  scale(spec: string, who?: string): Promise<ScaleOutcome>;
  /** Starts a graceful stop (the master exits once it is done); says how long the drain may take. */
  stop(who?: string): { graceMs: number };
  /** Resolves once the cluster has stopped (every worker exited), with how it went. */
  stopped(): Promise<StopOutcome>;
  /** The current JavaScript stack of worker `id`, captured without its main thread's help. */
  stack(id: number): Promise<StackReport>;
  /** A CPU profile of worker `id` over `durationMs` (issue 12). */
  /** `signal` ends the window early (the asker went away): the profile is then not wanted. */
  profile(id: number, options: { durationMs: number; intervalUs: number; signal?: AbortSignal }): Promise<ProfileOutcome>;
  /** Where worker `id`'s loop spends `durationMs` (issue 12); `signal` ends the window early (the asker went away). */
  loop(id: number, options: { durationMs: number; signal?: AbortSignal }): Promise<LoopOutcome>;
  /** The last blocked-loop report of each worker id, if any. */
  lastBlocked(id: number): BlockedInfo | null;
  /** Recent log lines, oldest first, optionally of one worker. */
  recentLogs(worker?: number): LogEntry[];
  /** Follows new log lines; returns the unsubscribe. */
  followLogs(listener: (entry: LogEntry) => void): () => void;
}
