// What a control-plane client receives: the master's ClusterStatus (src/master/status.ts) as it
// survives the wire. The only differences: history comes in brief (HistoryPoint), and a state a
// newer master knows but this client does not reads 'unknown'.
import type { ClusterStatus, KilledWorker, LogEntry, MasterUsage, OperationProgress, StackFrame, StackReport, WorkerStatus } from '../master/status.js';
import type { WorkerState } from '../master/worker-state.js';
import type { LoopBreakdown } from '../loop/types.js';

/** A past sample in brief, enough for a sparkline. */
export interface HistoryPoint {
  time: number;
  lagP99: number;
  lagMax: number;
  elu: number;
  cpu: number;
  rps: number;
}

/** A worker's last blocked-loop episode: when (epoch ms), how long (ms), its stack, innermost first. */
export interface BlockedView {
  time: number;
  blockedMs: number;
  frames: StackFrame[];
  /** The process the watchdog caught (and replaced); 0 from a master older than the field. */
  pid: number;
}

/** `inherited` stays in the master: /metrics and the totals read it there. */
export interface WorkerView extends Omit<WorkerStatus, 'state' | 'history' | 'inherited'> {
  state: WorkerState | 'unknown';
  /** Oldest first; empty unless the call asked for history. */
  history: HistoryPoint[];
  /** Null when the worker id's loop was never caught blocked (or the master keeps no reports). */
  lastBlocked: BlockedView | null;
}

/** `counts` stay in the master: /metrics reads them there, the per-worker figures carry what a client shows. */
export interface ClusterView extends Omit<ClusterStatus, 'workers' | 'counts' | 'master'> {
  workers: WorkerView[];
  /** The master process's own memory and CPU; null from a master older than the field. */
  master: MasterUsage | null;
  /**
   * The master's RUNTIME_PREFIXES: where clusterd's frames in its workers are, for telling the app's
   * frame from clusterd's (this client's own may be another install). An older master's: this client's.
   */
  runtimePrefixes: string[];
}

/**
 * One step of a reload or restart as a client sees it: the master's steps, then `done` with
 * the outcome (a reload's new generation and count of replaced workers; a restart's new pid).
 */
export interface ProgressView extends Omit<OperationProgress, 'phase' | 'killed'> {
  phase: OperationProgress['phase'] | 'done' | 'unknown';
  /** On a reload's `done`: how many workers were replaced. */
  replaced: number;
  /** On `replaced`: the old worker, when it was killed at --grace rather than drained; null otherwise (and from a master older than the field). */
  killed: KilledWorker | null;
}

export interface StackView {
  state: StackReport['state'] | 'unknown';
  frames: StackFrame[];
}

/** A worker's output line as `clusterd logs` receives it; worker 0 is a note from the master. */
export type LogView = LogEntry;

/** `clusterd loop`'s answer as a client sees it: the breakdown, or the stack of a loop too blocked to measure. */
export type LoopView = { worker: number } & (LoopBreakdown | { blocked: StackView & { blockedMs: number } });
