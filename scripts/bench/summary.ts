// Medians over rounds, per system and step, with ratios to node:cluster rr: what results.md shows and
// results.json keeps under `summary`.
import type { LowerBound } from './load/open-loop-tally.js';
import { cpuTickSeconds } from './processes.js';
import type { RunRecord } from './runner.js';
import { median } from './stats.js';

export interface Summary {
  system: string;
  label: string;
  rounds: number;
  rps?: number;
  /** Median req/s over median req/s of the reference (node:cluster rr). */
  ratio?: number;
  /** Median over rounds of req/s over the reference's req/s in the same round: less sensitive to slow drifts. */
  pairedRatio?: number;
  p50?: number;
  /** p90 and p99.9: open-loop steps only. */
  p90?: number;
  p99?: number;
  p999?: number;
  max?: number;
  /** Median p99 over the reference's median p99 (open-loop steps: the rate is the same for everyone). */
  p99Ratio?: number;
  /** Median over rounds of p99 over the reference's p99 in the same round (open-loop steps). */
  pairedP99Ratio?: number;
  errors?: number;
  /** Median over rounds of the requests that failed (no response, or not 2xx) over all requests that had an outcome. */
  errorShare?: number;
  /** The latency medians that are only lower bounds: requests that got no response decide them (open loop). */
  lowerBounds?: LowerBound[];
  workerCv?: number;
  /** Each worker's share of the requests, largest first (median per rank over rounds). */
  split?: number[];
  /** (e): the share of requests the worker that blocks its loop served. */
  blockedShare?: number;
  masterCpuPct?: number;
  /** Master CPU microseconds per connection the workers accepted, and per request they served, in the window. */
  masterUsPerConnection?: number;
  masterUsPerRequest?: number;
  /**
   * What one clock tick of the master's CPU (10 ms, the resolution of /proc/<pid>/stat) is worth in the
   * three figures above (median over rounds): a figure below it means less than one tick was seen.
   */
  masterTick?: { pct?: number; perConnection?: number; perRequest?: number };
  workersCpuPct?: number;
  /** Responses per CPU-second of the master and workers together: steadier than req/s when other processes steal CPU. */
  requestsPerCpuS?: number;
  /** Open-loop steps: the rate asked for, in how many rounds the generator held it, and its worst lag and CPU. */
  targetRps?: number;
  heldRounds?: number;
  sendLagP99?: number;
  loadgenCpuPct?: number;
  /** Keep-alive open-loop steps: connections the server ended with `Connection: close`, replaced by new ones (median per round). */
  reconnects?: number;
  otherCpuPct?: number;
  startMs?: number;
  /** Why the system has no figures (a failed start, for example). */
  note?: string;
}

/** The record's step key; results written before steps existed key by workload. */
export function keyOf(record: RunRecord): string {
  return record.key ?? record.workload;
}

/**
 * Master CPU per connection and per request the workers counted in the window, in microseconds;
 * `seconds` instead of the master's own CPU gives what that much would be worth (one tick's, say).
 */
export function masterCost(record: RunRecord, seconds = masterSeconds(record)): { perConnection?: number; perRequest?: number } {
  if (seconds === undefined || !record.workers) return {};
  const connections = record.workers.reduce((sum, worker) => sum + worker.connections, 0);
  const requests = record.workers.reduce((sum, worker) => sum + worker.requests, 0);
  return {
    ...(connections > 0 ? { perConnection: (seconds * 1e6) / connections } : {}),
    ...(requests > 0 ? { perRequest: (seconds * 1e6) / requests } : {}),
  };
}

/** The share of the requests that failed: errors over responses plus the requests that got none. */
export function errorShareOf(load: NonNullable<RunRecord['load']>): number | undefined {
  const { socket, timeouts, total } = load.errors;
  const outcomes = load.requests + socket + timeouts;
  return outcomes > 0 ? total / outcomes : undefined;
}

/**
 * The latency medians over `runs` that are lower bounds: a round at or above the median whose own
 * figure was one (its true value is higher, so the true median may be too).
 */
function lowerBoundMedians(runs: RunRecord[], medians: Partial<Record<LowerBound, number>>): LowerBound[] {
  return (Object.keys(medians) as LowerBound[]).filter((name) => {
    const value = medians[name];
    return value !== undefined && runs.some((record) => {
      const ms = record.load?.latencyMs;
      return ms?.lowerBounds?.includes(name) && (ms[name] ?? 0) >= value;
    });
  });
}

/** The master's CPU seconds in the window; files written before masterCpuS was kept: the share times the window. */
function masterSeconds(record: RunRecord): number | undefined {
  return record.masterCpuS ?? (record.masterCpuPct === undefined ? undefined : (record.masterCpuPct / 100) * windowOf(record));
}

function windowOf(record: RunRecord): number {
  return record.windowS ?? record.load?.durationS ?? 0;
}

/** One clock tick of master CPU in the units of masterCpuPct, masterUsPerConnection and masterUsPerRequest. */
function masterTick(runs: RunRecord[]): Summary['masterTick'] {
  const measured = runs.filter((record) => record.masterCpuPct !== undefined && windowOf(record) > 0);
  if (measured.length === 0) return undefined;
  const tick = cpuTickSeconds();
  return {
    pct: median(measured.map((record) => (tick / windowOf(record)) * 100)),
    perConnection: median(measured.map((record) => masterCost(record, tick).perConnection)),
    perRequest: median(measured.map((record) => masterCost(record, tick).perRequest)),
  };
}

/** Each worker's share of the requests, largest first. */
function shares(record: RunRecord): number[] {
  const total = record.workers?.reduce((sum, worker) => sum + worker.requests, 0) ?? 0;
  return total > 0 ? (record.workers ?? []).map((worker) => worker.requests / total).sort((x, y) => y - x) : [];
}

/** Medians per system for one step, with ratios to `reference` (node:cluster rr). */
export function summarise(
  records: RunRecord[],
  entries: Array<{ id: string; label: string }>,
  key: string,
  notes: Map<string, string>,
  reference = 'cluster-rr',
): Summary[] {
  const ofStep = records.filter((record) => keyOf(record) === key);
  const referenceRuns = new Map(ofStep.filter((record) => record.system === reference && record.ok).map((record) => [record.round, record.load]));
  /** The median over rounds of `value` over the reference's in the same round (interleaved rounds are pairs). */
  const paired = (runs: RunRecord[], value: (load: NonNullable<RunRecord['load']>) => number | undefined) =>
    median(
      runs.map((record) => {
        const base = referenceRuns.get(record.round);
        const mine = record.load && value(record.load);
        const theirs = base && value(base);
        return mine !== undefined && theirs ? mine / theirs : undefined;
      }),
    );
  const rows = entries.map((entry): Summary => {
    const runs = ofStep.filter((record) => record.system === entry.id && record.ok && record.load);
    const pick = (value: (record: RunRecord) => number | undefined) => median(runs.map(value));
    const failed = ofStep.find((record) => record.system === entry.id && !record.ok);
    const note = notes.get(entry.id) ?? (failed ? `${runs.length} ok, failed once: ${failed.error}` : undefined);
    const open = runs.some((record) => record.load?.open);
    const splits = runs.map(shares);
    const workers = Math.max(0, ...splits.map((split) => split.length));
    const row: Summary = {
      system: entry.id,
      label: entry.label,
      rounds: runs.length,
      rps: pick((record) => record.load?.rps),
      pairedRatio: paired(runs, (load) => load.rps),
      p50: pick((record) => record.load?.latencyMs.p50),
      p99: pick((record) => record.load?.latencyMs.p99),
      max: pick((record) => record.load?.latencyMs.max),
      errors: pick((record) => record.load?.errors.total),
      errorShare: pick((record) => (record.load ? errorShareOf(record.load) : undefined)),
      workerCv: pick((record) => record.workerCv),
      masterCpuPct: pick((record) => record.masterCpuPct),
      masterUsPerConnection: pick((record) => masterCost(record).perConnection),
      masterUsPerRequest: pick((record) => masterCost(record).perRequest),
      masterTick: masterTick(runs),
      workersCpuPct: pick((record) => record.workersCpuPct),
      requestsPerCpuS: pick((record) =>
        record.load && record.workersCpuPct ? record.load.rps / ((record.workersCpuPct + (record.masterCpuPct ?? 0)) / 100) : undefined,
      ),
      otherCpuPct: pick((record) => record.otherCpuPct),
      startMs: pick((record) => record.startMs),
      ...(note ? { note } : {}),
    };
    if (workers > 1) row.split = Array.from({ length: workers }, (_, rank) => median(splits.map((split) => split[rank] ?? 0)) ?? 0);
    if (open) {
      Object.assign(row, {
        p90: pick((record) => record.load?.latencyMs.p90),
        p999: pick((record) => record.load?.latencyMs.p999),
        targetRps: pick((record) => record.load?.open?.targetRps),
        pairedP99Ratio: paired(runs, (load) => load.latencyMs.p99),
        heldRounds: runs.filter((record) => record.load?.open?.heldRate).length,
        sendLagP99: pick((record) => record.load?.open?.sendLagMs.p99),
        loadgenCpuPct: pick((record) => record.loadgenCpuPct),
      });
      const reconnects = pick((record) => record.load?.open?.reconnects);
      if (reconnects) row.reconnects = reconnects;
      const blocked = pick((record) => {
        const total = record.workers?.reduce((sum, worker) => sum + worker.requests, 0) ?? 0;
        const blocker = record.workers?.find((worker) => worker.pid === record.blockerPid);
        return blocker && total > 0 ? blocker.requests / total : undefined;
      });
      if (blocked !== undefined) row.blockedShare = blocked;
      const bounds = lowerBoundMedians(runs, { p50: row.p50, p90: row.p90, p99: row.p99, p999: row.p999, max: row.max });
      if (bounds.length) row.lowerBounds = bounds;
    }
    return row;
  });
  const base = rows.find((row) => row.system === reference);
  for (const row of rows) {
    if (base?.rps && row.rps !== undefined) row.ratio = row.rps / base.rps;
    if (base?.p99 && row.p99 !== undefined && row.targetRps !== undefined) row.p99Ratio = row.p99 / base.p99;
  }
  return rows;
}

export const NOISE_PREFIX = 'other processes on the machine used';

/** A line on how much CPU other processes took during the measurements: the noise in these figures. */
export function noiseNote(records: RunRecord[], cores: number): string | undefined {
  const other = records.map((record) => record.otherCpuPct).filter((value): value is number => value !== undefined);
  if (other.length === 0) return undefined;
  const worst = Math.max(...other);
  const repeated = records.filter((record) => record.discarded?.length).length;
  const again = repeated ? `; ${repeated} measurement(s) were repeated for it (or because the open-loop rate was not held)` : '';
  return `${NOISE_PREFIX} a median ${median(other)?.toFixed(0)}% (max ${worst.toFixed(0)}%) of one core during the measurements, out of ${cores * 100}%${again}`;
}
