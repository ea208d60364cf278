// `npm run bench:herd`: what a shared listening socket costs per connection as the worker count grows.
// libuv's epoll backend does not use EPOLLEXCLUSIVE, so every worker polling the shared socket
// (node:cluster SCHED_NONE, clusterd --balance shared) is woken for each new connection, and all but
// the one whose accept() wins go back to sleep with EAGAIN. The waste shows when workers are idle and
// waiting in epoll, so the load is a fixed, low open-loop rate of new connections (default 1000/s).
//
// For each system and worker count W the script starts the cluster, warms it up, then measures two
// windows of --duration each: one idle (no load) and one under the load. From /proc it reads every
// serving process's CPU (utime + stime, all threads) and its main thread's voluntary context switches
// (one per sleep in epoll: a wake-up); the idle window is subtracted, scaled to the loaded window's
// length, so the timers every worker runs anyway (clusterd's loop-delay probe, for one) do not count.
// What is left, divided by the connections the workers counted, is the cost per connection.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { createOpenLoop } from './load/open-loop.js';
import type { LoadResult } from './load/types.js';
import { contextSwitches, cpuSeconds, installExitHandlers, machineBusySeconds, selfAndChildrenSeconds } from './processes.js';
import { waitQuiet } from './runner.js';
import { median } from './stats.js';
import { allSystems, benchPaths, clusterdModes, countFiles, type SystemSpec } from './systems.js';
import { workloads } from './workloads.js';

// 64: the issue asks what the herd costs at 64 workers; a 16-core machine can start that many (bounded).
const MAX_WORKERS = 64;

const usage = `npm run bench:herd -- [options]

Measures what a shared listening socket costs per connection as workers are added: worker CPU and
wake-ups (voluntary context switches) per connection at a fixed, low rate of new connections, each
net of the same workers' idle cost.

  --counts LIST    worker counts (default 1,2,4,8,16; at most ${MAX_WORKERS})
  --rate N         new connections per second, open loop (default 1000)
  --duration S     seconds of each window, idle and loaded (default 3)
  --warmup S       seconds of load before the windows (default 1)
  --rounds N       repeat every measurement N times; figures are medians (default 1)
  --systems LIST   system ids (default cluster-none,clusterd-shared; cluster-rr shows a master's handoff)
  --port N         port (default 3779)
  --quiet P        before each start, wait (at most 30 s) until other processes use less than P% of
                   one core, and measure again (at most twice) when they used more during the loaded
                   window; the quietest attempt counts (default 50; 0 = neither)
  --out DIR        results folder (default bench-results/herd-<timestamp>)
  -h, --help       this text`;

const FLUSH_MS = 300;
const QUIET_WAIT_MS = 30_000;
const NOISY_RETRIES = 2;

interface Snapshot {
  cpuS: number;
  wakeups: number;
  involuntary: number;
  masterCpuS: number | undefined;
  machineS: number | undefined;
  selfS: number | undefined;
  at: number;
}

/** The snapshots around the idle window, the start of the loaded one, and the connection counts then. */
interface Windows {
  idleFrom: Snapshot;
  idleTo: Snapshot;
  loadFrom: Snapshot;
  before: Map<number, number>;
}

/** One system at one worker count. */
export interface HerdRecord {
  system: string;
  label: string;
  workers: number;
  round: number;
  /** Connections the workers accepted during the loaded window. */
  connections: number;
  idleS: number;
  loadS: number;
  /** Serving processes' CPU (s) and main-thread wake-ups in each window. */
  idle: { cpuS: number; wakeups: number };
  load: { cpuS: number; wakeups: number; involuntary: number; masterCpuS?: number };
  /** Per connection, net of the idle window scaled to the loaded one. */
  cpuUsPerConnection: number;
  wakeupsPerConnection: number;
  masterUsPerConnection?: number;
  /** Each worker's share of the connections, largest first. */
  split: number[];
  /** CPU of everything else on the machine during the loaded window, % of one core. */
  otherCpuPct?: number;
  generator: LoadResult;
  error?: string;
}

function snapshot(pids: number[], master: number | undefined): Snapshot | undefined {
  let cpuS = 0;
  let wakeups = 0;
  let involuntary = 0;
  for (const pid of pids) {
    const cpu = cpuSeconds(pid);
    const switches = contextSwitches(pid);
    if (cpu === undefined || switches === undefined) return undefined;
    cpuS += cpu;
    wakeups += switches.voluntary;
    involuntary += switches.involuntary;
  }
  return {
    cpuS,
    wakeups,
    involuntary,
    masterCpuS: master === undefined ? undefined : cpuSeconds(master),
    machineS: machineBusySeconds(),
    selfS: selfAndChildrenSeconds(),
    at: performance.now(),
  };
}

async function measure(
  system: SystemSpec,
  { workers, round, rate, durationS, warmupS, port, scratch, runId }: { workers: number; round: number; rate: number; durationS: number; warmupS: number; port: number; scratch: string; runId: number },
): Promise<HerdRecord> {
  const countDir = path.join(scratch, `herd-${process.pid}-${runId}`);
  fs.rmSync(countDir, { recursive: true, force: true });
  fs.mkdirSync(countDir, { recursive: true });
  const generator = createOpenLoop();
  const run = { port, workload: workloads.b, rate, timeoutS: 5, pool: 1, maxInFlight: 2000 };
  const running = await system.start({ port, workers, countDir, runId });
  try {
    let pids: number[] = [];
    const read = () => {
      const taken = snapshot(pids, running.masterPid);
      if (!taken) throw new Error('a worker vanished from /proc');
      return taken;
    };
    let windows: Windows | undefined;
    // Between the generator's warm-up and its measured load: let the counts settle, then the idle window.
    const idleWindow = async () => {
      await sleep(FLUSH_MS);
      pids = countFiles(countDir).map((count) => count.pid);
      if (pids.length !== workers) throw new Error(`${pids.length} of ${workers} workers wrote a count file`);
      const idleFrom = read();
      await sleep(durationS * 1000);
      const idleTo = read();
      const before = new Map(countFiles(countDir).map((count) => [count.pid, count.connections]));
      windows = { idleFrom, idleTo, before, loadFrom: read() };
    };
    const generated = await generator.run({ ...run, durationS, warmupS, onStart: idleWindow });
    const loadTo = read();
    // Set in the callback: TypeScript cannot see that, hence the cast.
    const taken = windows as Windows | undefined;
    if (!taken) throw new Error('the generator never started the measured load');
    const { idleFrom, idleTo, loadFrom, before } = taken;
    await sleep(FLUSH_MS);
    const accepted = countFiles(countDir).map((count) => count.connections - (before.get(count.pid) ?? 0));
    const connections = accepted.reduce((sum, count) => sum + count, 0);
    const idleS = (idleTo.at - idleFrom.at) / 1000;
    const loadS = (loadTo.at - loadFrom.at) / 1000;
    const scale = loadS / idleS;
    const idle = { cpuS: idleTo.cpuS - idleFrom.cpuS, wakeups: idleTo.wakeups - idleFrom.wakeups };
    const load = {
      cpuS: loadTo.cpuS - loadFrom.cpuS,
      wakeups: loadTo.wakeups - loadFrom.wakeups,
      involuntary: loadTo.involuntary - loadFrom.involuntary,
      ...(loadFrom.masterCpuS !== undefined && loadTo.masterCpuS !== undefined ? { masterCpuS: loadTo.masterCpuS - loadFrom.masterCpuS } : {}),
    };
    const per = (value: number) => (connections > 0 ? value / connections : NaN);
    // Everything but the workers, the master and this process with its generator child.
    const generatorS = (loadTo.selfS ?? 0) - (loadFrom.selfS ?? 0) - (generated.open ? generated.open.lifetimeCpuS - generated.open.cpuS : 0);
    const machineS = loadTo.machineS !== undefined && loadFrom.machineS !== undefined ? loadTo.machineS - loadFrom.machineS : undefined;
    return {
      system: system.id,
      label: system.label,
      workers,
      round,
      connections,
      idleS,
      loadS,
      idle,
      load,
      cpuUsPerConnection: per((load.cpuS - idle.cpuS * scale) * 1e6),
      wakeupsPerConnection: per(load.wakeups - idle.wakeups * scale),
      ...(load.masterCpuS === undefined ? {} : { masterUsPerConnection: per(load.masterCpuS * 1e6) }),
      split: accepted.map((count) => (connections > 0 ? count / connections : 0)).sort((x, y) => y - x),
      ...(machineS === undefined ? {} : { otherCpuPct: Math.max(0, ((machineS - load.cpuS - (load.masterCpuS ?? 0) - generatorS) / loadS) * 100) }),
      generator: generated,
    };
  } finally {
    await running.stop();
    fs.rmSync(countDir, { recursive: true, force: true });
  }
}

/** Medians per system and worker count, and the Markdown table. */
function report(records: HerdRecord[], systems: SystemSpec[], counts: number[]): { rows: Array<Record<string, unknown>>; markdown: string } {
  const rows: Array<Record<string, unknown>> = [];
  const fmt = (value: number | undefined, digits: number) => (value === undefined || Number.isNaN(value) ? 'n/a' : value.toFixed(digits));
  const lines = [
    '| system | workers | connections | worker CPU us/conn | wake-ups/conn | extra wake-ups/conn vs 1 worker | idle workers CPU % | master us/conn | p50 ms | p99 ms | rate held | others % of a core |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const system of systems) {
    let oneWorker: number | undefined;
    for (const workers of counts) {
      const runs = records.filter((record) => record.system === system.id && record.workers === workers && !record.error);
      if (runs.length === 0) {
        lines.push(`| ${system.label} | ${workers} | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |`);
        continue;
      }
      const pick = (value: (record: HerdRecord) => number | undefined) => median(runs.map(value));
      const wakeups = pick((record) => record.wakeupsPerConnection);
      if (workers === 1) oneWorker = wakeups;
      const row = {
        system: system.id,
        workers,
        rounds: runs.length,
        connections: pick((record) => record.connections),
        cpuUsPerConnection: pick((record) => record.cpuUsPerConnection),
        wakeupsPerConnection: wakeups,
        extraWakeupsPerConnection: wakeups === undefined || oneWorker === undefined ? undefined : wakeups - oneWorker,
        idleCpuPct: pick((record) => (record.idle.cpuS / record.idleS) * 100),
        masterUsPerConnection: pick((record) => record.masterUsPerConnection),
        p50: pick((record) => record.generator.latencyMs.p50),
        p99: pick((record) => record.generator.latencyMs.p99),
        held: runs.every((record) => record.generator.open?.heldRate),
        otherCpuPct: pick((record) => record.otherCpuPct),
      };
      rows.push(row);
      lines.push(
        `| ${system.label} | ${workers} | ${fmt(row.connections, 0)} | ${fmt(row.cpuUsPerConnection, 0)} | ${fmt(row.wakeupsPerConnection, 2)} | ${fmt(row.extraWakeupsPerConnection, 2)} | ${fmt(row.idleCpuPct, 1)} | ${fmt(row.masterUsPerConnection, 0)} | ${fmt(row.p50, 2)} | ${fmt(row.p99, 2)} | ${row.held ? 'yes' : '**no**'} | ${fmt(row.otherCpuPct, 0)} |`,
      );
    }
  }
  return { rows, markdown: lines.join('\n') };
}

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        counts: { type: 'string', default: '1,2,4,8,16' },
        rate: { type: 'string', default: '1000' },
        duration: { type: 'string', default: '3' },
        warmup: { type: 'string', default: '1' },
        rounds: { type: 'string', default: '1' },
        systems: { type: 'string', default: 'cluster-none,clusterd-shared' },
        port: { type: 'string', default: '3779' },
        quiet: { type: 'string', default: '50' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    console.error(`bench:herd: ${(error as Error).message} (npm run bench:herd -- --help lists the flags)`);
    return 2;
  }
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const counts = values.counts.split(',').map(Number);
  const numbers = {
    rate: Number(values.rate),
    duration: Number(values.duration),
    warmup: Number(values.warmup),
    rounds: Number(values.rounds),
    port: Number(values.port),
    quiet: Number(values.quiet),
  };
  const bad =
    counts.find((count) => !Number.isInteger(count) || count < 1 || count > MAX_WORKERS) !== undefined
      ? `Expected \`--counts\` to hold whole numbers from 1 to ${MAX_WORKERS}, got \`${values.counts}\``
      : numbers.rate <= 0 || numbers.rate > 20_000 || !Number.isFinite(numbers.rate)
        ? `Expected \`--rate\` to be a number above 0 and at most 20000, got \`${values.rate}\``
        : !(numbers.duration >= 0.5 && numbers.duration <= 60)
          ? `Expected \`--duration\` to be between 0.5 and 60 seconds, got \`${values.duration}\``
          : !(numbers.warmup >= 0 && numbers.warmup <= 60)
            ? `Expected \`--warmup\` to be between 0 and 60 seconds, got \`${values.warmup}\``
            : !Number.isInteger(numbers.rounds) || numbers.rounds < 1
              ? `Expected \`--rounds\` to be a whole number of at least 1, got \`${values.rounds}\``
              : !Number.isInteger(numbers.port) || numbers.port < 1
                ? `Expected \`--port\` to be a port number, got \`${values.port}\``
                : !(numbers.quiet >= 0)
                  ? `Expected \`--quiet\` to be a number of at least 0, got \`${values.quiet}\``
                  : undefined;
  if (bad) {
    console.error(`bench:herd: ${bad}`);
    return 2;
  }
  installExitHandlers();
  const root = path.resolve(import.meta.dirname, '..', '..');
  const paths = benchPaths(root);
  if (!fs.existsSync(path.join(root, 'dist', 'cli', 'main.js'))) {
    console.error('bench:herd: dist/ is empty; run `npm run build` first');
    return 1;
  }
  const { modes } = clusterdModes(paths);
  const known = allSystems({ paths, pm2: undefined, modes });
  const wanted = values.systems.split(',').map((id) => id.trim());
  const unknown = wanted.filter((id) => !known.some((system) => system.id === id));
  if (unknown.length) {
    console.error(`bench:herd: Expected \`--systems\` to hold ids among ${known.map((system) => system.id).join(', ')}, got \`${unknown.join(',')}\``);
    return 2;
  }
  const systems = wanted.map((id) => known.find((system) => system.id === id) as SystemSpec);
  const scratch = path.join(paths.cache, 'tmp');
  fs.mkdirSync(scratch, { recursive: true });
  const date = new Date().toISOString();
  const out = values.out ?? path.join(root, 'bench-results', `herd-${date.replace(/[:.]/g, '-')}`);
  fs.mkdirSync(out, { recursive: true });

  const records: HerdRecord[] = [];
  let runId = 0;
  for (let round = 1; round <= numbers.rounds; round++) {
    for (const workers of counts) {
      // Alternate which system goes first, as the benchmark's rounds do.
      for (const system of (round + workers) % 2 ? systems : [...systems].reverse()) {
        const tag = `[round ${round}/${numbers.rounds}] ${system.label} x${workers}`;
        try {
          const once = async () => {
            await waitQuiet(numbers.quiet, QUIET_WAIT_MS);
            return measure(system, { workers, round, rate: numbers.rate, durationS: numbers.duration, warmupS: numbers.warmup, port: numbers.port, scratch, runId: ++runId });
          };
          let record = await once();
          // Other processes on a shared machine take CPU and wake-ups from the windows: measure again.
          for (let retry = 0; retry < NOISY_RETRIES && numbers.quiet > 0 && (record.otherCpuPct ?? 0) > numbers.quiet; retry++) {
            console.error(`${tag}: others took ${record.otherCpuPct?.toFixed(0)}% of a core, measuring again`);
            const again = await once();
            if ((again.otherCpuPct ?? Infinity) < (record.otherCpuPct ?? Infinity)) record = again;
          }
          records.push(record);
          console.error(
            `${tag}: ${record.connections} connections, ${record.cpuUsPerConnection.toFixed(0)} us CPU and ${record.wakeupsPerConnection.toFixed(2)} wake-ups per connection${record.generator.open?.heldRate ? '' : ` (rate not held: ${record.generator.open?.notHeld})`}`,
          );
        } catch (error) {
          console.error(`${tag}: FAILED ${(error as Error).message}`);
        }
      }
    }
  }

  const { rows, markdown } = report(records, systems, counts);
  const header = [
    '# Shared listening socket: cost per connection as workers are added',
    '',
    `Command: \`npm run bench:herd${argv.length ? ` -- ${argv.join(' ')}` : ''}\``,
    '',
    `- Date: ${date}; Node ${process.version}; ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${os.availableParallelism()} cores, ${os.type()} ${os.release()}`,
    `- ${numbers.rate} new connections per second (open loop, \`Connection: close\`), ${numbers.duration} s idle then ${numbers.duration} s loaded per measurement after ${numbers.warmup} s of warm-up; ${numbers.rounds} round(s), medians`,
    '- worker CPU us/conn and wake-ups/conn: all serving processes together, loaded window minus the idle window scaled to the same length, per connection the workers counted. CPU is utime + stime from /proc/<pid>/stat (10 ms ticks per process); wake-ups are the main threads\' voluntary context switches from /proc/<pid>/status',
    '',
  ].join('\n');
  const text = `${header}\n${markdown}\n`;
  fs.writeFileSync(path.join(out, 'results.json'), `${JSON.stringify({ kind: 'herd', date, options: { counts, ...numbers, systems: wanted }, rows, records }, null, 2)}\n`);
  fs.writeFileSync(path.join(out, 'results.md'), text);
  console.log(text);
  console.error(`bench:herd: wrote ${path.relative(root, out)}/results.json, results.md`);
  return records.length ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
