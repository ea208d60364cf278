// ClusterStatus -> wire (in the master) and wire -> ClusterView (in clients). Written out field by
// field on purpose: the compiler then flags any field added to the status types and not here.
import type { LoopSample } from '../loop/types.js';
import type { BlockedInfo, ClusterStatus, WorkerStatus } from '../master/status.js';
import type { WorkerState } from '../master/worker-state.js';
import type { WireBlockedSite, WireClusterStatus, WireHistoryPoint, WireSample, WireWorker, WireWorkerState } from './proto.js';
import type { BlockedSite } from '../master/blocked-sites.js';
import type { ClusterView, HistoryPoint, WorkerView } from './types.js';
import { decodeBlocked, encodeBlocked } from './convert-ops.js';
import { RUNTIME_PREFIXES } from '../master/blocking-report.js';
import { readyAndBlocked, wireTotals } from './worker-rows.js';

const WIRE_STATES: Record<WorkerState, WireWorkerState> = {
  starting: 'WORKER_STATE_STARTING',
  ready: 'WORKER_STATE_READY',
  'not-listening': 'WORKER_STATE_NOT_LISTENING',
  stopping: 'WORKER_STATE_STOPPING',
  exited: 'WORKER_STATE_EXITED',
};

const STATES = new Map<string, WorkerState>(Object.entries(WIRE_STATES).map(([state, wire]) => [wire, state as WorkerState]));

export interface EncodeOptions {
  /** Fill each worker's history (it is the bulk of the message). */
  history: boolean;
  /** Each worker id's last blocked-loop report, where the master keeps them. */
  lastBlocked?: ((id: number) => BlockedInfo | null) | undefined;
}

/** The master's status as a ClusterStatus message; history only when asked for. */
export function encodeStatus(status: ClusterStatus, { history, lastBlocked }: EncodeOptions): WireClusterStatus {
  return {
    name: status.name,
    masterPid: status.masterPid,
    startedAt: status.startedAt,
    uptimeMs: status.uptimeMs,
    entry: status.entry,
    balance: status.balance,
    statsIntervalMs: status.statsIntervalMs,
    workers: status.workers.map((worker) => encodeWorker(worker, history, lastBlocked?.(worker.id) ?? null)),
    totals: wireTotals(status.totals),
    addresses: [...status.addresses],
    waiting: status.waiting.map((waiting) => ({ id: waiting.id, crashes: waiting.crashes, restartInMs: Math.round(waiting.restartInMs), blockedSites: waiting.blockedSites.map((site) => ({ ...site })) })),
    runtimePrefixes: [...RUNTIME_PREFIXES],
    master: { ...status.master },
    stopTerms: status.stopTerms ? { graceMs: status.stopTerms.graceMs } : null,
  };
}

function encodeWorker(worker: WorkerStatus, history: boolean, blocked: BlockedInfo | null): WireWorker {
  return {
    id: worker.id,
    pid: worker.pid,
    state: WIRE_STATES[worker.state] ?? 'WORKER_STATE_UNSPECIFIED',
    generation: worker.generation,
    startedAt: worker.startedAt,
    uptimeMs: worker.uptimeMs,
    restarts: worker.restarts,
    memoryReplacements: worker.memoryReplacements,
    sample: worker.sample ? encodeSample(worker.sample) : null,
    history: history ? worker.history.map(encodeHistoryPoint) : [],
    lastBlocked: blocked ? encodeBlocked(blocked) : null,
    blockedSites: worker.blockedSites.map((site) => ({ ...site })),
    blocks: worker.blocks,
    blockedMs: Math.round(worker.blockedMs),
  };
}

function encodeSample(sample: LoopSample): WireSample {
  return {
    time: sample.time,
    intervalMs: sample.intervalMs,
    lag: { ...sample.lag },
    elu: sample.elu,
    loop: sample.loop ? { ...sample.loop } : null,
    cpu: sample.cpu,
    memory: { ...sample.memory },
    resources: { ...sample.resources },
    http: { ...sample.http },
  };
}

function encodeHistoryPoint(sample: LoopSample): WireHistoryPoint {
  return { time: sample.time, lagP99: sample.lag.p99, lagMax: sample.lag.max, elu: sample.elu, cpu: sample.cpu, rps: sample.http.rps };
}

/** A ClusterStatus message as a client sees it; tolerant of fields a different version left out. */
export function decodeStatus(wire: WireClusterStatus): ClusterView {
  const totals = wire.totals;
  const workers = (wire.workers ?? []).map(decodeWorker);
  return {
    name: wire.name,
    masterPid: wire.masterPid,
    startedAt: wire.startedAt,
    uptimeMs: wire.uptimeMs,
    entry: wire.entry,
    balance: wire.balance,
    statsIntervalMs: wire.statsIntervalMs,
    workers,
    totals: {
      workers: totals?.workers ?? 0,
      ...readyAndBlocked({ ready: totals?.ready ?? 0, blocked: totals?.blocked ?? 0 }, workers),
      // The master's own count: what it lists is more during a restart or a reload (an id's old and new
      // process) and a scale-down's drain. Only a master older than the field says 0 (scale refuses 0).
      desired: totals?.desired || (totals?.workers ?? 0),
      rps: totals?.rps ?? 0,
      inflight: totals?.inflight ?? 0,
      connections: totals?.connections ?? 0,
      rss: totals?.rss ?? 0,
      restarts: totals?.restarts ?? 0,
      memoryReplacements: totals?.memoryReplacements ?? 0,
    },
    addresses: (wire.addresses ?? []).filter((address): address is string => typeof address === 'string'),
    waiting: (wire.waiting ?? []).map((waiting) => ({ id: waiting.id, crashes: waiting.crashes, restartInMs: waiting.restartInMs, blockedSites: (waiting.blockedSites ?? []).map(decodeSite) })),
    runtimePrefixes: runtimePrefixesOf(wire),
    // A master older than the field sends none: nothing is shown for it.
    master: wire.master ? { rss: wire.master.rss, heapUsed: wire.master.heapUsed, heapTotal: wire.master.heapTotal, cpuSeconds: wire.master.cpuSeconds } : null,
    // A master older than the field sends none: `clusterd stop` then asks as it always did.
    stopTerms: wire.stopTerms ? { graceMs: wire.stopTerms.graceMs } : null,
  };
}

/** The master's runtime prefixes; an older master sends none, and this client's own are the best guess. */
function runtimePrefixesOf(wire: WireClusterStatus): string[] {
  const prefixes = (wire.runtimePrefixes ?? []).filter((prefix): prefix is string => typeof prefix === 'string' && prefix !== '');
  return prefixes.length > 0 ? prefixes : [...RUNTIME_PREFIXES];
}

function decodeSite(site: WireBlockedSite): BlockedSite {
  return { function: site.function, url: site.url, line: site.line, count: site.count, maxMs: site.maxMs, lastSeen: site.lastSeen };
}

function decodeWorker(wire: WireWorker): WorkerView {
  return {
    id: wire.id,
    pid: wire.pid,
    state: STATES.get(wire.state) ?? 'unknown',
    generation: wire.generation,
    startedAt: wire.startedAt,
    uptimeMs: wire.uptimeMs,
    restarts: wire.restarts,
    memoryReplacements: wire.memoryReplacements ?? 0,
    sample: wire.sample ? decodeSample(wire.sample) : null,
    history: (wire.history ?? []).map((point): HistoryPoint => ({ ...point })),
    lastBlocked: decodeBlocked(wire.lastBlocked),
    blockedSites: (wire.blockedSites ?? []).map(decodeSite),
    blocks: wire.blocks ?? 0,
    blockedMs: wire.blockedMs ?? 0,
  };
}

function decodeSample(wire: WireSample): LoopSample {
  const { lag, memory, http } = wire;
  return {
    time: wire.time,
    intervalMs: wire.intervalMs,
    lag: { mean: lag?.mean ?? 0, p50: lag?.p50 ?? 0, p90: lag?.p90 ?? 0, p99: lag?.p99 ?? 0, max: lag?.max ?? 0 },
    elu: wire.elu,
    loop: wire.loop ? { ...wire.loop } : null,
    cpu: wire.cpu,
    memory: {
      rss: memory?.rss ?? 0,
      heapUsed: memory?.heapUsed ?? 0,
      heapTotal: memory?.heapTotal ?? 0,
      external: memory?.external ?? 0,
      arrayBuffers: memory?.arrayBuffers ?? 0,
    },
    resources: { ...wire.resources },
    http: { rps: http?.rps ?? 0, requests: http?.requests ?? 0, inflight: http?.inflight ?? 0, connections: http?.connections ?? 0 },
  };
}
