// The master's view of the cluster, as the control plane serves it (Status, Watch, metrics).
import type { LoopSample } from '../loop/types.js';
import type { WorkerState } from './worker-state.js';
import type { Supervisor } from './supervisor.js';

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

/** Builds the control plane's snapshot: every live worker process, serving or not, by id. */
export function buildStatus(supervisor: Supervisor): ClusterStatus {
  const now = Date.now();
  const workers: WorkerStatus[] = supervisor
    .processes()
    .sort((a, b) => a.id - b.id || a.startedAt - b.startedAt)
    .map((worker) => ({
      id: worker.id,
      pid: worker.pid,
      state: worker.state,
      generation: worker.generation,
      startedAt: worker.startedAt,
      uptimeMs: now - worker.startedAt,
      restarts: supervisor.slot(worker.id)?.restarts ?? 0,
      sample: worker.history.at(-1) ?? null,
      history: [...worker.history],
    }));
  const sum = (pick: (worker: WorkerStatus) => number): number => workers.reduce((total, worker) => total + pick(worker), 0);
  const { config } = supervisor;
  return {
    name: config.name,
    masterPid: process.pid,
    startedAt: supervisor.startedAt,
    uptimeMs: now - supervisor.startedAt,
    entry: config.entry.path,
    balance: config.balance,
    statsIntervalMs: config.statsIntervalMs,
    workers,
    totals: {
      workers: workers.length,
      ready: workers.filter((worker) => worker.state === 'ready').length,
      rps: sum((worker) => worker.sample?.http.rps ?? 0),
      inflight: sum((worker) => worker.sample?.http.inflight ?? 0),
      connections: sum((worker) => worker.sample?.http.connections ?? 0),
      rss: sum((worker) => worker.sample?.memory.rss ?? 0),
      restarts: supervisor.workers().reduce((total, worker) => total + (supervisor.slot(worker.id)?.restarts ?? 0), 0),
    },
  };
}
