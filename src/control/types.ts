// What a control-plane client receives: the master's ClusterStatus (src/master/status.ts) as it
// survives the wire. The only differences: history comes in brief (HistoryPoint), and a state a
// newer master knows but this client does not reads 'unknown'.
import type { ClusterStatus, WorkerStatus } from '../master/status.js';
import type { WorkerState } from '../master/worker-state.js';

/** A past sample in brief, enough for a sparkline. */
export interface HistoryPoint {
  time: number;
  lagP99: number;
  lagMax: number;
  elu: number;
  cpu: number;
  rps: number;
}

export interface WorkerView extends Omit<WorkerStatus, 'state' | 'history'> {
  state: WorkerState | 'unknown';
  /** Oldest first; empty unless the call asked for history. */
  history: HistoryPoint[];
}

export interface ClusterView extends Omit<ClusterStatus, 'workers'> {
  workers: WorkerView[];
}
