// Interleaved rounds: for each round, for each workload, every system in a rotated order is started,
// warmed up, measured, stopped, and its port waited free before the next one starts.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LoadGenerator, LoadResult } from './load/types.js';
import type { BenchOptions } from './options.js';
import { cpuSeconds, machineBusySeconds, portFree, selfAndChildrenSeconds, waitFor } from './processes.js';
import { coefficientOfVariation, median } from './stats.js';
import { countFiles, StartError, type SystemSpec } from './systems.js';
import { workloads, type WorkloadId } from './workloads.js';

/** One system as the runner schedules it: a spec and the worker count it runs with. */
export interface Entry {
  id: string;
  label: string;
  spec: SystemSpec;
  workers: number;
}

export interface RunRecord {
  round: number;
  workload: WorkloadId;
  system: string;
  /** Position of the system in this round's order (1-based). */
  position: number;
  ok: boolean;
  error?: string;
  /** How long the run waited for other processes to quieten down before starting. */
  quietWaitMs?: number;
  /** Milliseconds from spawn until every worker listened and the port accepted. */
  startMs?: number;
  load?: LoadResult;
  /** What each serving process counted during the measurement, and the CPU it used (% of one core). */
  workers?: Array<{ pid: number; requests: number; connections: number; cpuPct?: number }>;
  workerCv?: number;
  /** The master's CPU use over the measurement, in % of one core. */
  masterCpuPct?: number;
  /** All serving processes' CPU use together, in % of one core. */
  workersCpuPct?: number;
  /** The load generator's CPU use (wrk, or this process running autocannon), in % of one core. */
  loadgenCpuPct?: number;
  /** Every other process on the machine (other users, tests...), in % of one core: the noise. */
  otherCpuPct?: number;
  /** Earlier attempts of this measurement, dropped because other processes took too much CPU. */
  discarded?: Array<{ rps?: number; otherCpuPct?: number; error?: string }>;
}

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
  p99?: number;
  max?: number;
  errors?: number;
  workerCv?: number;
  masterCpuPct?: number;
  workersCpuPct?: number;
  /** Responses per CPU-second of the master and workers together: steadier than req/s when other processes steal CPU. */
  requestsPerCpuS?: number;
  otherCpuPct?: number;
  startMs?: number;
  /** Why the system has no figures (a failed start, for example). */
  note?: string;
}

export interface Schedule {
  entries: Entry[];
  workloads: WorkloadId[];
  rounds: number;
  durationS: number;
  warmupS: number;
  connections: number;
  threads: number;
  port: number;
  generator: LoadGenerator;
  /** Scratch folder for the count directories. */
  scratch: string;
  quietPct: number;
  quietWaitS: number;
  /** How many times a measurement during which others used more than quietPct% of a core is repeated. */
  noisyRetries: number;
}

/** The schedule the options ask for, over `entries`, measuring with `generator`. */
export function scheduleFrom(options: BenchOptions, entries: Entry[], generator: LoadGenerator, scratch: string): Schedule {
  return {
    entries,
    workloads: options.workloads as WorkloadId[],
    rounds: options.rounds,
    durationS: generator.roundDuration(options.durationS),
    warmupS: options.warmupS,
    connections: options.connections,
    threads: options.threads,
    port: options.port,
    generator,
    scratch,
    quietPct: options.quietPct,
    quietWaitS: options.quietWaitS,
    noisyRetries: options.noisyRetries,
  };
}

const FLUSH_MS = 300;
const PORT_FREE_TIMEOUT_MS = 20_000;

/**
 * Runs the schedule, appending each measurement to `records` as it completes (so that an interrupted
 * run can still write what it has); `notes` collects, per system id, why it was dropped.
 */
export async function runRounds(schedule: Schedule, notes: Map<string, string>, records: RunRecord[] = []): Promise<RunRecord[]> {
  let runId = 0;
  const total = schedule.rounds * schedule.workloads.length * schedule.entries.length;
  for (let round = 1; round <= schedule.rounds; round++) {
    for (const workload of schedule.workloads) {
      // Rotate by round, so that no system always runs first (cold machine) or last.
      const shift = (round - 1) % schedule.entries.length;
      const order = [...schedule.entries.slice(shift), ...schedule.entries.slice(0, shift)];
      for (const [index, entry] of order.entries()) {
        runId++;
        const tag = `[round ${round}/${schedule.rounds} ${workload} ${String(runId).padStart(String(total).length)}/${total}]`;
        if (notes.has(entry.id)) continue;
        let record = await runOne(schedule, entry, workload, { round, position: index + 1, runId });
        // A measurement other processes took too much CPU from is repeated; the quietest attempt counts.
        const discarded: NonNullable<RunRecord['discarded']> = [];
        while (record.ok && discarded.length < schedule.noisyRetries && isNoisy(record, schedule.quietPct)) {
          console.error(`${tag} ${entry.label}: others took ${record.otherCpuPct?.toFixed(0)}% of a core, measuring again`);
          const again = await runOne(schedule, entry, workload, { round, position: index + 1, runId });
          const [kept, dropped] = again.ok && (again.otherCpuPct ?? Infinity) < (record.otherCpuPct ?? Infinity) ? [again, record] : [record, again];
          discarded.push({ rps: dropped.load?.rps, otherCpuPct: dropped.otherCpuPct, error: dropped.error });
          record = kept;
        }
        if (discarded.length) record.discarded = discarded;
        records.push(record);
        if (record.ok && record.load) {
          const { load } = record;
          const cv = record.workerCv === undefined ? '' : ` cv ${(record.workerCv * 100).toFixed(1)}%`;
          console.error(
            `${tag} ${entry.label}: ${Math.round(load.rps)} req/s p50 ${load.latencyMs.p50.toFixed(2)} ms p99 ${load.latencyMs.p99.toFixed(2)} ms errors ${load.errors.total}${cv}`,
          );
        } else {
          console.error(`${tag} ${entry.label}: FAILED ${record.error}`);
          // A system that cannot start (a mode not implemented yet) is dropped for the rest of the run.
          if (record.error?.startsWith('start: ')) notes.set(entry.id, `skipped: ${record.error}`);
        }
      }
    }
  }
  return records;
}

async function runOne(
  schedule: Schedule,
  entry: Entry,
  workloadId: WorkloadId,
  { round, position, runId }: { round: number; position: number; runId: number },
): Promise<RunRecord> {
  const base = { round, workload: workloadId, system: entry.id, position };
  const { generator, port } = schedule;
  const workload = workloads[workloadId];
  const countDir = path.join(schedule.scratch, `counts-${process.pid}-${runId}`);
  fs.rmSync(countDir, { recursive: true, force: true });
  fs.mkdirSync(countDir, { recursive: true });
  try {
    await waitFor(() => portFree(port), PORT_FREE_TIMEOUT_MS, `port ${port} is held by another process`);
  } catch (error) {
    return { ...base, ok: false, error: (error as Error).message };
  }

  const quietWaitMs = await waitQuiet(schedule.quietPct, schedule.quietWaitS * 1000);
  const started = performance.now();
  let running;
  try {
    running = await entry.spec.start({ port, workers: entry.workers, countDir, runId });
  } catch (error) {
    const message = (error as Error).message;
    return { ...base, ok: false, quietWaitMs, error: error instanceof StartError ? `start: ${message}` : message };
  }
  const startMs = performance.now() - started;

  try {
    const load = { port, workload, connections: schedule.connections, threads: schedule.threads, timeoutS: 5 };
    if (schedule.warmupS > 0) await generator.run({ ...load, durationS: generator.roundDuration(schedule.warmupS) });
    // Let every worker write its final count (every 100 ms), then take the "before" snapshot.
    await sleep(FLUSH_MS);
    const before = countFiles(countDir);
    const servers = before.map((count) => count.pid);
    const cpuBefore = cpuSnapshot(running.masterPid, servers);
    const measured = performance.now();
    const result = await generator.run({ ...load, durationS: generator.roundDuration(schedule.durationS) });
    const seconds = (performance.now() - measured) / 1000;
    const cpuAfter = cpuSnapshot(running.masterPid, servers);
    await sleep(FLUSH_MS);
    const after = countFiles(countDir);

    const start = new Map(before.map((count) => [count.pid, count]));
    const workers = after
      .map((count) => {
        const from = start.get(count.pid);
        const cpu = cpuBefore.each.get(count.pid);
        const cpuNow = cpuAfter.each.get(count.pid);
        return {
          pid: count.pid,
          requests: count.served - (from?.served ?? 0),
          connections: count.connections - (from?.connections ?? 0),
          cpuPct: cpu === undefined || cpuNow === undefined ? undefined : ((cpuNow - cpu) / seconds) * 100,
        };
      })
      .sort((x, y) => y.requests - x.requests);
    const share = (a: number | undefined, b: number | undefined) =>
      a === undefined || b === undefined ? undefined : ((b - a) / seconds) * 100;
    const masterCpuPct = share(cpuBefore.master, cpuAfter.master);
    const workersCpuPct = share(cpuBefore.servers, cpuAfter.servers);
    const loadgenCpuPct = share(cpuBefore.self, cpuAfter.self);
    const machinePct = share(cpuBefore.machine, cpuAfter.machine);
    return {
      ...base,
      ok: true,
      quietWaitMs,
      startMs,
      load: result,
      workers,
      workerCv: coefficientOfVariation(workers.map((worker) => worker.requests)),
      masterCpuPct,
      workersCpuPct,
      loadgenCpuPct,
      otherCpuPct:
        machinePct === undefined || loadgenCpuPct === undefined ? undefined : Math.max(0, machinePct - loadgenCpuPct - (masterCpuPct ?? 0) - (workersCpuPct ?? 0)),
    };
  } catch (error) {
    return { ...base, ok: false, quietWaitMs, startMs, error: (error as Error).message };
  } finally {
    await running.stop();
    await waitFor(() => portFree(port), PORT_FREE_TIMEOUT_MS, `port ${port} still held after stopping ${entry.label}`).catch((error: Error) =>
      console.error(`bench: ${error.message}`),
    );
    fs.rmSync(countDir, { recursive: true, force: true });
  }
}

function isNoisy(record: RunRecord, pct: number): boolean {
  return pct > 0 && record.otherCpuPct !== undefined && record.otherCpuPct > pct;
}

/**
 * Waits until processes other than the benchmark use less than `pct`% of one core over a 1 s window,
 * for at most `maxMs`; returns how long it waited. Other sessions' test suites on a shared machine
 * otherwise decide the figures.
 */
async function waitQuiet(pct: number, maxMs: number): Promise<number> {
  if (pct <= 0) return 0;
  const started = performance.now();
  while (performance.now() - started < maxMs) {
    const before = { machine: machineBusySeconds(), self: selfAndChildrenSeconds() };
    const t0 = performance.now();
    await sleep(1_000);
    const seconds = (performance.now() - t0) / 1000;
    const machine = machineBusySeconds();
    const self = selfAndChildrenSeconds();
    if (machine === undefined || self === undefined || before.machine === undefined || before.self === undefined) return 0;
    const other = ((machine - before.machine - (self - before.self)) / seconds) * 100;
    if (other < pct) break;
  }
  return Math.round(performance.now() - started);
}

function cpuSnapshot(
  master: number | undefined,
  servers: number[],
): { master?: number; servers?: number; self?: number; machine?: number; each: Map<number, number | undefined> } {
  const each = servers.map((pid) => cpuSeconds(pid));
  return {
    each: new Map(servers.map((pid, index) => [pid, each[index]])),
    self: selfAndChildrenSeconds(),
    machine: machineBusySeconds(),
    master: master === undefined ? undefined : cpuSeconds(master),
    servers: each.some((value) => value === undefined) ? undefined : each.reduce<number>((sum, value) => sum + (value ?? 0), 0),
  };
}

/** Medians per system for one workload, with ratios to `reference` (node:cluster rr). */
export function summarise(
  records: RunRecord[],
  entries: Array<{ id: string; label: string }>,
  workload: WorkloadId,
  notes: Map<string, string>,
  reference = 'cluster-rr',
): Summary[] {
  const referenceRps = new Map(
    records.filter((record) => record.workload === workload && record.system === reference && record.ok).map((record) => [record.round, record.load?.rps]),
  );
  const rows = entries.map((entry): Summary => {
    const runs = records.filter((record) => record.workload === workload && record.system === entry.id && record.ok && record.load);
    const pick = (value: (record: RunRecord) => number | undefined) => median(runs.map(value));
    const failed = records.find((record) => record.workload === workload && record.system === entry.id && !record.ok);
    const note = notes.get(entry.id) ?? (failed ? `${runs.length} ok, failed once: ${failed.error}` : undefined);
    return {
      system: entry.id,
      label: entry.label,
      rounds: runs.length,
      rps: pick((record) => record.load?.rps),
      pairedRatio: pick((record) => {
        const base = referenceRps.get(record.round);
        return base && record.load ? record.load.rps / base : undefined;
      }),
      p50: pick((record) => record.load?.latencyMs.p50),
      p99: pick((record) => record.load?.latencyMs.p99),
      max: pick((record) => record.load?.latencyMs.max),
      errors: pick((record) => record.load?.errors.total),
      workerCv: pick((record) => record.workerCv),
      masterCpuPct: pick((record) => record.masterCpuPct),
      workersCpuPct: pick((record) => record.workersCpuPct),
      requestsPerCpuS: pick((record) =>
        record.load && record.workersCpuPct ? record.load.rps / ((record.workersCpuPct + (record.masterCpuPct ?? 0)) / 100) : undefined,
      ),
      otherCpuPct: pick((record) => record.otherCpuPct),
      startMs: pick((record) => record.startMs),
      ...(note ? { note } : {}),
    };
  });
  const base = rows.find((row) => row.system === reference)?.rps;
  for (const row of rows) if (base && row.rps !== undefined) row.ratio = row.rps / base;
  return rows;
}

export const NOISE_PREFIX = 'other processes on the machine used';

/** A line on how much CPU other processes took during the measurements: the noise in these figures. */
export function noiseNote(records: RunRecord[], cores: number): string | undefined {
  const other = records.map((record) => record.otherCpuPct).filter((value): value is number => value !== undefined);
  if (other.length === 0) return undefined;
  const worst = Math.max(...other);
  const repeated = records.filter((record) => record.discarded?.length).length;
  const again = repeated ? `; ${repeated} measurement(s) were repeated for it` : '';
  return `${NOISE_PREFIX} a median ${median(other)?.toFixed(0)}% (max ${worst.toFixed(0)}%) of one core during the measurements, out of ${cores * 100}%${again}`;
}
