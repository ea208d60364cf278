// The master's view of the cluster, as the control plane serves it (Status, Watch, metrics).
import type { LoopSample } from '../loop/types.js';
import type { WorkerState } from './worker-state.js';

export interface WorkerStatus {
  id: number;
  pid: number;
  state: WorkerState;
  /** Code generation: 1 at start, +1 per reload. */
  generation: number;
  startedAt: number;
  uptimeMs: number;
  /** Times this worker id has been replaced after an unexpected exit. */
  restarts: number;
  /** The latest sample, null until the first one arrives. */
  sample: LoopSample | null;
  /** Up to the last 60 samples, oldest first. */
  history: LoopSample[];
}

export interface ClusterTotals {
  workers: number;
  ready: number;
  rps: number;
  inflight: number;
  connections: number;
  rss: number;
  restarts: number;
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
}

/** What the control plane needs from the master. Issue 4's operations will join it. */
export interface ControlSource {
  status(): ClusterStatus;
  /** Calls `listener` after each new sample or worker state change; returns the unsubscribe. */
  onChange(listener: () => void): () => void;
}
