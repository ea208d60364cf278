// Interleaved rounds: for each round, for each step (a workload, or an open-loop workload at one
// rate), every system in a rotated order is started, warmed up, measured, stopped, and its port waited
// free before the next one starts.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LoadGenerator, LoadResult, LoadRun, OpenLoopGenerator } from './load/types.js';
import type { BenchOptions } from './options.js';
import { cpuSeconds, machineBusySeconds, portFree, selfAndChildrenSeconds, tcpCounters, waitFor, type TcpCounters } from './processes.js';
import { coefficientOfVariation } from './stats.js';
import type { Step } from './steps.js';
import { countFiles, StartError, type Count, type SystemSpec } from './systems.js';
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
  /** The step measured ('a', 'd@50'...); results written before steps existed have only `workload`. */
  key?: string;
  /** Open-loop steps: the share of capacity and the rate asked for (req/s). */
  ratePct?: number;
  rate?: number;
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
  /** Seconds between the CPU snapshots that frame the load: the measured window. */
  windowS?: number;
  /** The master's CPU use over the measurement, in % of one core, and in CPU seconds. */
  masterCpuPct?: number;
  masterCpuS?: number;
  /** (e): the serving process that blocked its loop (it wrote its pid into the count folder). */
  blockerPid?: number;
  /** All serving processes' CPU use together, in % of one core. */
  workersCpuPct?: number;
  /** The load generator's CPU use (wrk, the open-loop child, or this process running autocannon), in % of one core. */
  loadgenCpuPct?: number;
  /** Every other process on the machine (other users, tests...), in % of one core: the noise. */
  otherCpuPct?: number;
  /**
   * The machine's SYN retransmits and listen-queue overflows during the measurement (every process's,
   * the system's own included): each one delays a new connection by a second or more.
   */
  tcp?: TcpCounters;
  /** Earlier attempts of this measurement, dropped because other processes took too much CPU (or the rate was not held). */
  discarded?: Array<{ rps?: number; otherCpuPct?: number; error?: string; heldRate?: boolean }>;
}

export interface Schedule {
  entries: Entry[];
  steps: Step[];
  rounds: number;
  durationS: number;
  warmupS: number;
  connections: number;
  threads: number;
  port: number;
  /** The closed-loop generator (wrk or autocannon), for a, b and c. */
  generator: LoadGenerator;
  /** The open-loop generator, for the steps with a rate. */
  openLoop?: OpenLoopGenerator;
  /** Open loop: keep-alive pool size, and most connections at once with a new connection per request. */
  pool: number;
  maxInFlight: number;
  /** Scratch folder for the count directories. */
  scratch: string;
  quietPct: number;
  quietWaitS: number;
  /** How many times a measurement during which others used more than quietPct% of a core is repeated. */
  noisyRetries: number;
}

/** The schedule the options ask for, over `entries` and `steps`, measuring with `generator` (and `openLoop`). */
export function scheduleFrom(
  options: BenchOptions,
  { entries, steps, generator, openLoop, scratch }: { entries: Entry[]; steps: Step[]; generator: LoadGenerator; openLoop?: OpenLoopGenerator; scratch: string },
): Schedule {
  return {
    entries,
    steps,
    rounds: options.rounds,
    durationS: generator.roundDuration(options.durationS),
    warmupS: options.warmupS,
    connections: options.connections,
    threads: options.threads,
    port: options.port,
    generator,
    ...(openLoop ? { openLoop } : {}),
    pool: options.pool,
    maxInFlight: options.maxInFlight,
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
  const total = schedule.rounds * schedule.steps.length * schedule.entries.length;
  for (let round = 1; round <= schedule.rounds; round++) {
    for (const step of schedule.steps) {
      // Rotate by round, so that no system always runs first (cold machine) or last.
      const shift = (round - 1) % schedule.entries.length;
      const order = [...schedule.entries.slice(shift), ...schedule.entries.slice(0, shift)];
      for (const [index, entry] of order.entries()) {
        runId++;
        const tag = `[round ${round}/${schedule.rounds} ${step.key} ${String(runId).padStart(String(total).length)}/${total}]`;
        if (notes.has(entry.id)) continue;
        let record = await runOne(schedule, entry, step, { round, position: index + 1, runId });
        // A measurement other processes took too much CPU from, or in which the open-loop generator fell
        // behind its schedule, is repeated; the best attempt (rate held, then quietest) counts.
        const discarded: NonNullable<RunRecord['discarded']> = [];
        let doubt: string | undefined;
        while (record.ok && discarded.length < schedule.noisyRetries && (doubt = doubtAbout(record, schedule.quietPct))) {
          console.error(`${tag} ${entry.label}: ${doubt}, measuring again`);
          const again = await runOne(schedule, entry, step, { round, position: index + 1, runId });
          const [kept, dropped] = again.ok && rank(again) < rank(record) ? [again, record] : [record, again];
          discarded.push({ rps: dropped.load?.rps, otherCpuPct: dropped.otherCpuPct, error: dropped.error, ...(dropped.load?.open ? { heldRate: dropped.load.open.heldRate } : {}) });
          record = kept;
        }
        if (discarded.length) record.discarded = discarded;
        records.push(record);
        if (record.ok && record.load) {
          console.error(`${tag} ${entry.label}: ${progressLine(record.load, record.workerCv)}${tcpNote(record.tcp)}`);
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

/** One line of progress on stderr for a finished measurement. */
function progressLine(load: LoadResult, workerCv: number | undefined): string {
  const cv = workerCv === undefined ? '' : ` cv ${(workerCv * 100).toFixed(1)}%`;
  const { latencyMs: ms, open } = load;
  if (!open) return `${Math.round(load.rps)} req/s p50 ${ms.p50.toFixed(2)} ms p99 ${ms.p99.toFixed(2)} ms errors ${load.errors.total}${cv}`;
  const held = open.heldRate ? 'rate held' : `RATE NOT HELD: ${open.notHeld}`;
  // "≥": requests that got no response decide the figure (load/open-loop-tally.ts).
  const at = (name: 'p50' | 'p99' | 'p999' | 'max', digits = 2) => `${ms.lowerBounds?.includes(name) ? '≥' : ''}${ms[name]?.toFixed(digits)}`;
  return `${Math.round(load.rps)}/${Math.round(open.targetRps)} req/s p50 ${at('p50')} p99 ${at('p99')} p99.9 ${at('p999')} max ${at('max', 1)} ms errors ${load.errors.total}${open.reconnects ? ` reconnects ${open.reconnects}` : ''}${cv}; ${held}`;
}

async function runOne(schedule: Schedule, entry: Entry, step: Step, { round, position, runId }: { round: number; position: number; runId: number }): Promise<RunRecord> {
  const base = {
    round,
    workload: step.workload,
    key: step.key,
    ...(step.rate === undefined ? {} : { ratePct: step.ratePct, rate: step.rate }),
    system: entry.id,
    position,
  };
  const { port } = schedule;
  const workload = workloads[step.workload];
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
  const workers = step.workers === undefined ? entry.workers : entry.spec.serving(step.workers);
  let running;
  try {
    running = await entry.spec.start({ port, workers, countDir, runId, ...(workload.open?.appEnv ? { appEnv: workload.open.appEnv } : {}) });
  } catch (error) {
    const message = (error as Error).message;
    return { ...base, ok: false, quietWaitMs, error: error instanceof StartError ? `start: ${message}` : message };
  }
  const startMs = performance.now() - started;

  const record = await (async (): Promise<RunRecord> => {
    try {
      let before: Count[] = [];
      let servers: number[] = [];
      let cpuAtStart: CpuSnapshot | undefined;
      let measured = 0;
      // Called after the warm-up, right before the measured load: for the open-loop generator, once its
      // child has loaded and warmed up, so that neither falls inside the window.
      const startMeasuring = async () => {
        // Let every worker write its final count (every 100 ms), then take the "before" snapshot.
        await sleep(FLUSH_MS);
        before = countFiles(countDir);
        servers = before.map((count) => count.pid);
        cpuAtStart = cpuSnapshot(running.masterPid, servers);
        measured = performance.now();
      };
      const result = await loader(schedule, step)({ durationS: schedule.durationS, warmupS: schedule.warmupS, start: startMeasuring });
      const cpuBefore = cpuAtStart as CpuSnapshot | undefined;
      if (!cpuBefore) throw new Error('the load generator never started the measured load');
      const seconds = (performance.now() - measured) / 1000;
      const cpuAfter = cpuSnapshot(running.masterPid, servers);
      await sleep(FLUSH_MS);
      const after = countFiles(countDir);

      const start = new Map(before.map((count) => [count.pid, count]));
      const perWorker = after
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
      const delta = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : b - a);
      const share = (cpu: number | undefined) => (cpu === undefined ? undefined : (cpu / seconds) * 100);
      const masterCpuS = delta(cpuBefore.master, cpuAfter.master);
      const masterCpuPct = share(masterCpuS);
      const workersCpuPct = share(delta(cpuBefore.servers, cpuAfter.servers));
      // This process's reaped children include the open-loop child's start-up; count only its run.
      const self = delta(cpuBefore.self, cpuAfter.self);
      const loadgenCpuPct = share(self === undefined || !result.open ? self : self - result.open.lifetimeCpuS + result.open.cpuS);
      const machinePct = share(delta(cpuBefore.machine, cpuAfter.machine));
      const blockerPid = readBlocker(countDir);
      const tcp = tcpDelta(cpuBefore.tcp, cpuAfter.tcp);
      return {
        ...base,
        ok: true,
        quietWaitMs,
        startMs,
        load: result,
        workers: perWorker,
        workerCv: coefficientOfVariation(perWorker.map((worker) => worker.requests)),
        windowS: seconds,
        masterCpuPct,
        ...(masterCpuS === undefined ? {} : { masterCpuS }),
        ...(blockerPid === undefined ? {} : { blockerPid }),
        ...(tcp === undefined ? {} : { tcp }),
        workersCpuPct,
        loadgenCpuPct,
        otherCpuPct:
          machinePct === undefined || loadgenCpuPct === undefined ? undefined : Math.max(0, machinePct - loadgenCpuPct - (masterCpuPct ?? 0) - (workersCpuPct ?? 0)),
      };
    } catch (error) {
      return { ...base, ok: false, quietWaitMs, startMs, error: (error as Error).message };
    }
  })();
  // A stop that fails (PM2's when its count folder went missing, say) fails this measurement, not the run.
  const stopped = await running.stop().then(
    () => undefined,
    (error: Error) => error,
  );
  await waitFor(() => portFree(port), PORT_FREE_TIMEOUT_MS, `port ${port} still held after stopping ${entry.label}`).catch((error: Error) =>
    console.error(`bench: ${error.message}`),
  );
  fs.rmSync(countDir, { recursive: true, force: true });
  if (!stopped) return record;
  return { ...record, ok: false, error: `${record.ok ? '' : `${record.error}; `}stop: ${stopped.message}` };
}

/** Warms up, calls `start`, and measures for `durationS`. */
type Load = (run: { durationS: number; warmupS: number; start: () => Promise<void> }) => Promise<LoadResult>;

/** The step's load: the closed-loop generator, or the open-loop one at the step's rate. */
function loader(schedule: Schedule, step: Step): Load {
  const workload = workloads[step.workload];
  const { port, generator } = schedule;
  if (step.rate === undefined) {
    const run: Omit<LoadRun, 'durationS'> = { port, workload, connections: schedule.connections, threads: schedule.threads, timeoutS: 5 };
    return async ({ durationS, warmupS, start }) => {
      if (warmupS > 0) await generator.run({ ...run, durationS: generator.roundDuration(warmupS) });
      await start();
      return generator.run({ ...run, durationS });
    };
  }
  const { openLoop } = schedule;
  if (!openLoop) throw new Error(`step ${step.key} has a rate but the schedule has no open-loop generator`);
  const rate = step.rate;
  // One child warms up and measures, so that its JIT is warm when the window opens.
  return ({ durationS, warmupS, start }) =>
    openLoop.run({ port, workload, rate, durationS, warmupS, timeoutS: 5, pool: schedule.pool, maxInFlight: schedule.maxInFlight, onStart: start });
}

/** The pid server.cjs wrote when it won the election to block its loop ((e)), if one did. */
function readBlocker(countDir: string): number | undefined {
  try {
    return Number(fs.readFileSync(path.join(countDir, 'blocker.lock'), 'utf8')) || undefined;
  } catch {
    return undefined;
  }
}

/** Why a measurement is worth repeating, if it is. */
function doubtAbout(record: RunRecord, pct: number): string | undefined {
  if (pct > 0 && record.otherCpuPct !== undefined && record.otherCpuPct > pct) return `others took ${record.otherCpuPct.toFixed(0)}% of a core`;
  if (record.load?.open && !record.load.open.heldRate) return `the open-loop generator did not hold its rate (${record.load.open.notHeld})`;
  return undefined;
}

/** Lower is better: an attempt whose rate was held beats one whose was not, then the quieter one. */
function rank(record: RunRecord): number {
  return (record.load?.open?.heldRate === false ? 1e6 : 0) + (record.otherCpuPct ?? 1e5);
}

/**
 * Waits until processes other than the benchmark use less than `pct`% of one core over a 1 s window,
 * for at most `maxMs`; returns how long it waited. Other sessions' test suites on a shared machine
 * otherwise decide the figures.
 */
export async function waitQuiet(pct: number, maxMs: number): Promise<number> {
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

interface CpuSnapshot {
  tcp?: TcpCounters;
  master?: number;
  servers?: number;
  self?: number;
  machine?: number;
  each: Map<number, number | undefined>;
}

function tcpDelta(before: TcpCounters | undefined, after: TcpCounters | undefined): TcpCounters | undefined {
  if (!before || !after) return undefined;
  return {
    synRetrans: after.synRetrans - before.synRetrans,
    listenOverflows: after.listenOverflows - before.listenOverflows,
    listenDrops: after.listenDrops - before.listenDrops,
  };
}

/** ", 12 SYN retransmits (3 listen overflows)" when the measurement had any, else "". */
export function tcpNote(tcp: TcpCounters | undefined): string {
  if (!tcp || (tcp.synRetrans === 0 && tcp.listenDrops === 0)) return '';
  const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`;
  return `, ${plural(tcp.synRetrans, 'SYN retransmit')} (${plural(tcp.listenOverflows, 'listen overflow')}, ${plural(tcp.listenDrops, 'listen drop')})`;
}

function cpuSnapshot(master: number | undefined, servers: number[]): CpuSnapshot {
  const each = servers.map((pid) => cpuSeconds(pid));
  return {
    tcp: tcpCounters(),
    each: new Map(servers.map((pid, index) => [pid, each[index]])),
    self: selfAndChildrenSeconds(),
    machine: machineBusySeconds(),
    master: master === undefined ? undefined : cpuSeconds(master),
    servers: each.some((value) => value === undefined) ? undefined : each.reduce<number>((sum, value) => sum + (value ?? 0), 0),
  };
}
