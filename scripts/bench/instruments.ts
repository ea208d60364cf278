// `npm run bench:instruments`: what clusterd's instruments cost a worker. Three parts, each against
// the benchmark's app (scripts/bench/apps/server.cjs) on 127.0.0.1:
//
// 1. Memory and idle CPU. The app alone (one plain node process), node:cluster's worker, clusterd's
//    worker as started by default (stats sampler, heartbeat, --report-blocked, watchdog), and with every
//    optional instrument off. Each is started, given light keep-alive load, then left idle; the RSS of
//    every serving process (VmRSS, /proc/<pid>/status) and its CPU over an idle window are read. For
//    clusterd the RSS is read again after a `stack` of each worker (its inspector is then up for good),
//    and after a `profile` and a `loop`, and the master's and its reaper's RSS are reported.
// 2. On-demand instruments under load: clusterd, open-loop keep-alive load at a fixed rate, three
//    windows of the same length: nothing, a `profile` of worker 1, a `loop` of worker 1. Worker 1's CPU
//    per request it served, and the generator's latency, in each window; `loop`'s own overheadPct.
// 3. Stack captures: how long `stack` takes from the control client's call to its answer, the first
//    one of a worker (SIGUSR1 starts the inspector) and later ones, idle and under load.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { connect } from '../../src/control/discovery.js';
import type { ControlClient } from '../../src/control/client.js';
import { createOpenLoop } from './load/open-loop.js';
import type { LoadResult } from './load/types.js';
import { cpuSeconds, installExitHandlers } from './processes.js';
import { waitQuiet } from './runner.js';
import { median } from './stats.js';
import { allSystems, bareClusterdSystem, benchPaths, clusterdModes, clusterdSystem, countFiles, type Paths, type RunningSystem, type SystemSpec } from './systems.js';
import { workloads } from './workloads.js';

const usage = `npm run bench:instruments -- [options]

What clusterd's instruments cost a worker: RSS and idle CPU beside the app alone and node:cluster,
the CPU and latency cost of \`profile\` and \`loop\` under load, and how long a stack capture takes.

  --rounds N       repeat each measurement N times; figures are medians (default 3)
  --workers N      workers per cluster (default 2)
  --rate N         keep-alive requests per second for the load windows (default 3000)
  --window S       seconds of each measured window (default 5)
  --port N         port (default 3781)
  --quiet P        before each start, wait (at most 30 s) until other processes use less than P% of one
                   core (default 50; 0 = do not wait)
  --out DIR        results folder (default bench-results/instruments-<timestamp>)
  -h, --help       this text`;

const LIGHT_LOAD = { rate: 2000, durationS: 2, warmupS: 1 };
/** Left alone after the light load before memory is read: timers and GC settle. */
const SETTLE_MS = 2000;
const CAPTURES = 10;

/** Resident set size of `pid` in bytes (VmRSS), undefined when unreadable. */
function rssBytes(pid: number): number | undefined {
  try {
    const kb = /^VmRSS:\s*(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

/** The processes whose parent is `pid`, with their command names. */
function children(pid: number): Array<{ pid: number; comm: string }> {
  const found: Array<{ pid: number; comm: string }> = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) found.push({ pid: Number(entry), comm });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

const MB = 1024 * 1024;
const mb = (bytes: number | undefined): string => (bytes === undefined ? 'n/a' : (bytes / MB).toFixed(1));
const fixed = (value: number | undefined, digits: number): string => (value === undefined || Number.isNaN(value) ? 'n/a' : value.toFixed(digits));

interface MemoryRecord {
  system: string;
  label: string;
  round: number;
  /** Each serving process's RSS after light load and a settle. */
  rss: number[];
  /** Serving processes' CPU while idle, % of one core each (mean over them). */
  idleCpuPct: number;
  masterRss?: number;
  reaperRss?: number;
  /** clusterd only: RSS of each worker after its inspector was opened by a stack, and after a profile and a loop. */
  afterStack?: number[];
  afterProfile?: number[];
  afterLoop?: number[];
}

interface LoadRecord {
  round: number;
  window: 'baseline' | 'profile' | 'loop';
  /** Worker 1's CPU per request it served, in µs. */
  cpuUsPerRequest: number;
  requests: number;
  generator: LoadResult;
  overheadPct?: number;
}

interface CaptureRecord {
  round: number;
  load: boolean;
  firstMs: number;
  laterMs: number[];
}

interface Context {
  paths: Paths;
  workers: number;
  port: number;
  scratch: string;
  quiet: number;
  runId: number;
}

async function withSystem<T>(system: SystemSpec, context: Context, use: (running: RunningSystem, countDir: string, name: string) => Promise<T>): Promise<T> {
  await waitQuiet(context.quiet, 30_000);
  const runId = ++context.runId;
  const countDir = path.join(context.scratch, `instruments-${process.pid}-${runId}`);
  fs.rmSync(countDir, { recursive: true, force: true });
  fs.mkdirSync(countDir, { recursive: true });
  const running = await system.start({ port: context.port, workers: context.workers, countDir, runId });
  try {
    return await use(running, countDir, `bench-${process.pid}-${runId}`);
  } finally {
    await running.stop();
    fs.rmSync(countDir, { recursive: true, force: true });
  }
}

async function clusterClient(name: string): Promise<{ client: ControlClient; pids: Map<number, number> }> {
  const { client, status } = await connect({ name });
  return { client, pids: new Map(status.workers.map((worker) => [worker.id, worker.pid])) };
}

async function measureMemory(system: SystemSpec, round: number, context: Context): Promise<MemoryRecord> {
  return withSystem(system, context, async (running, countDir, name) => {
    await createOpenLoop().run({ port: context.port, workload: workloads.a, rate: LIGHT_LOAD.rate, durationS: LIGHT_LOAD.durationS, warmupS: LIGHT_LOAD.warmupS, timeoutS: 5, pool: 16, maxInFlight: 16 });
    await sleep(SETTLE_MS);
    const pids = countFiles(countDir).map((count) => count.pid);
    const cpuBefore = pids.map((pid) => cpuSeconds(pid) ?? 0);
    const t0 = performance.now();
    await sleep(SETTLE_MS * 2);
    const seconds = (performance.now() - t0) / 1000;
    const idleCpuPct = (pids.reduce((sum, pid, index) => sum + ((cpuSeconds(pid) ?? 0) - cpuBefore[index]!), 0) / pids.length / seconds) * 100;
    const rssOf = () => pids.map((pid) => rssBytes(pid) ?? NaN);
    const record: MemoryRecord = { system: system.id, label: system.label, round, rss: rssOf(), idleCpuPct };
    if (running.masterPid !== undefined && system.group !== 'baseline') {
      record.masterRss = rssBytes(running.masterPid);
      const reaper = children(running.masterPid).find((child) => child.comm === 'sh' || child.comm === 'node');
      if (reaper && !pids.includes(reaper.pid)) record.reaperRss = rssBytes(reaper.pid);
    }
    if (system.group === 'clusterd' && system.id === 'clusterd-default') {
      const { client, pids: byId } = await clusterClient(name);
      try {
        for (const id of byId.keys()) await client.stack(id);
        await sleep(SETTLE_MS);
        record.afterStack = rssOf();
        for (const id of byId.keys()) await client.profile(id, { durationMs: 1000 });
        await sleep(SETTLE_MS);
        record.afterProfile = rssOf();
        for (const id of byId.keys()) await client.loop(id, { durationMs: 1000 });
        await sleep(SETTLE_MS);
        record.afterLoop = rssOf();
      } finally {
        client.close();
      }
    }
    return record;
  });
}

async function measureUnderLoad(system: SystemSpec, round: number, context: Context, { rate, windowS }: { rate: number; windowS: number }): Promise<LoadRecord[]> {
  return withSystem(system, context, async (_running, countDir, name) => {
    const { client, pids } = await clusterClient(name);
    const pid = pids.get(1);
    if (pid === undefined) throw new Error('no worker 1');
    const records: LoadRecord[] = [];
    try {
      for (const window of ['baseline', 'profile', 'loop'] as const) {
        let from: { cpu: number; served: number } | undefined;
        let instrument: Promise<number | undefined> = Promise.resolve(undefined);
        const served = () => countFiles(countDir).find((count) => count.pid === pid)?.served ?? 0;
        const generator = await createOpenLoop().run({
          port: context.port,
          workload: workloads.a,
          rate,
          durationS: windowS,
          warmupS: 1,
          timeoutS: 5,
          pool: 32,
          maxInFlight: 32,
          onStart: () => {
            from = { cpu: cpuSeconds(pid) ?? 0, served: served() };
            if (window === 'profile') instrument = client.profile(1, { durationMs: windowS * 1000 }).then(() => undefined);
            if (window === 'loop') instrument = client.loop(1, { durationMs: windowS * 1000 }).then((view) => ('overheadPct' in view ? view.overheadPct : undefined));
          },
        });
        const cpu = cpuSeconds(pid) ?? 0;
        const overheadPct = await instrument;
        // The app writes its counts every 100 ms.
        await sleep(300);
        if (!from) throw new Error('the generator never started the measured load');
        const requests = served() - from.served;
        records.push({ round, window, cpuUsPerRequest: requests > 0 ? ((cpu - from.cpu) * 1e6) / requests : NaN, requests, generator, ...(overheadPct === undefined ? {} : { overheadPct }) });
      }
    } finally {
      client.close();
    }
    return records;
  });
}

async function measureCaptures(system: SystemSpec, round: number, context: Context, rate: number): Promise<CaptureRecord[]> {
  const records: CaptureRecord[] = [];
  for (const load of [false, true]) {
    records.push(
      await withSystem(system, context, async (_running, _countDir, name) => {
        const { client } = await clusterClient(name);
        try {
          const timed = async () => {
            const t0 = performance.now();
            await client.stack(1);
            return performance.now() - t0;
          };
          const take = async () => {
            const firstMs = await timed();
            const laterMs: number[] = [];
            for (let i = 0; i < CAPTURES; i++) laterMs.push(await timed());
            return { round, load, firstMs, laterMs };
          };
          if (!load) return await take();
          let taken: CaptureRecord | undefined;
          await createOpenLoop().run({
            port: context.port,
            workload: workloads.a,
            rate,
            durationS: 3,
            warmupS: 1,
            timeoutS: 5,
            pool: 32,
            maxInFlight: 32,
            onStart: async () => {
              // Awaited before the measured load: the captures run during the warm-up's load instead,
              // so start them and let the measured load run on.
              void take().then(
                (record) => (taken = record),
                (error: Error) => console.error(`[round ${round}] a capture under load failed: ${error.message}`),
              );
            },
          });
          if (!taken) throw new Error('the captures did not finish within the load');
          return taken;
        } finally {
          client.close();
        }
      }),
    );
  }
  return records;
}

function report(memory: MemoryRecord[], loads: LoadRecord[], captures: CaptureRecord[], systems: SystemSpec[]): string {
  const lines = ['## Memory and idle CPU per serving process', '', '| system | RSS MB (median) | over the app alone, MB | idle CPU % of a core | master RSS MB | reaper RSS MB |', '|---|---:|---:|---:|---:|---:|'];
  const alone = median(memory.filter((record) => record.system === 'single').flatMap((record) => record.rss));
  for (const system of systems) {
    const runs = memory.filter((record) => record.system === system.id);
    if (runs.length === 0) continue;
    const rss = median(runs.flatMap((record) => record.rss));
    lines.push(
      `| ${system.label} | ${mb(rss)} | ${rss === undefined || alone === undefined ? 'n/a' : ((rss - alone) / MB).toFixed(1)} | ${fixed(median(runs.map((record) => record.idleCpuPct)), 2)} | ${mb(median(runs.map((record) => record.masterRss)))} | ${mb(median(runs.map((record) => record.reaperRss)))} |`,
    );
  }
  const opened = memory.filter((record) => record.afterStack);
  if (opened.length > 0) {
    lines.push('', '| clusterd default, each worker | RSS MB (median) | over the app alone, MB |', '|---|---:|---:|');
    for (const [label, pick] of [
      ['after light load', (record: MemoryRecord) => record.rss],
      ['after a `stack` (inspector up)', (record: MemoryRecord) => record.afterStack ?? []],
      ['after a 1 s `profile`', (record: MemoryRecord) => record.afterProfile ?? []],
      ['after a 1 s `loop`', (record: MemoryRecord) => record.afterLoop ?? []],
    ] as const) {
      const rss = median(opened.flatMap(pick));
      lines.push(`| ${label} | ${mb(rss)} | ${rss === undefined || alone === undefined ? 'n/a' : ((rss - alone) / MB).toFixed(1)} |`);
    }
  }
  lines.push('', '## On-demand instruments under load (worker 1)', '', '| window | worker 1 CPU µs/request | requests | p50 ms | p99 ms | loop overheadPct |', '|---|---:|---:|---:|---:|---:|');
  for (const window of ['baseline', 'profile', 'loop'] as const) {
    const runs = loads.filter((record) => record.window === window);
    if (runs.length === 0) continue;
    lines.push(
      `| ${window} | ${fixed(median(runs.map((record) => record.cpuUsPerRequest)), 1)} | ${fixed(median(runs.map((record) => record.requests)), 0)} | ${fixed(median(runs.map((record) => record.generator.latencyMs.p50)), 2)} | ${fixed(median(runs.map((record) => record.generator.latencyMs.p99)), 2)} | ${window === 'loop' ? fixed(median(runs.map((record) => record.overheadPct)), 1) : ''} |`,
    );
  }
  lines.push('', '## Stack captures (`stack`, control client to answer)', '', '| worker | first capture ms (starts the inspector) | later captures ms, median | max |', '|---|---:|---:|---:|');
  for (const load of [false, true]) {
    const runs = captures.filter((record) => record.load === load);
    if (runs.length === 0) continue;
    const later = runs.flatMap((record) => record.laterMs);
    lines.push(`| ${load ? 'under load' : 'idle'} | ${fixed(median(runs.map((record) => record.firstMs)), 1)} | ${fixed(median(later), 1)} | ${fixed(Math.max(...later), 1)} |`);
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        rounds: { type: 'string', default: '3' },
        workers: { type: 'string', default: '2' },
        rate: { type: 'string', default: '3000' },
        window: { type: 'string', default: '5' },
        port: { type: 'string', default: '3781' },
        quiet: { type: 'string', default: '50' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    console.error(`bench:instruments: ${(error as Error).message} (npm run bench:instruments -- --help lists the flags)`);
    return 2;
  }
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const numbers = { rounds: Number(values.rounds), workers: Number(values.workers), rate: Number(values.rate), window: Number(values.window), port: Number(values.port), quiet: Number(values.quiet) };
  const checks: Array<[boolean, string]> = [
    [Number.isInteger(numbers.rounds) && numbers.rounds >= 1 && numbers.rounds <= 20, `Expected \`--rounds\` to be a whole number from 1 to 20, got \`${values.rounds}\``],
    [Number.isInteger(numbers.workers) && numbers.workers >= 1 && numbers.workers <= 16, `Expected \`--workers\` to be a whole number from 1 to 16, got \`${values.workers}\``],
    [numbers.rate > 0 && numbers.rate <= 20_000, `Expected \`--rate\` to be above 0 and at most 20000, got \`${values.rate}\``],
    [numbers.window >= 1 && numbers.window <= 60, `Expected \`--window\` to be from 1 to 60 seconds, got \`${values.window}\``],
    [Number.isInteger(numbers.port) && numbers.port >= 1 && numbers.port <= 65535, `Expected \`--port\` to be a port number, got \`${values.port}\``],
    [numbers.quiet >= 0, `Expected \`--quiet\` to be a number of at least 0, got \`${values.quiet}\``],
  ];
  const bad = checks.find(([ok]) => !ok);
  if (bad) {
    console.error(`bench:instruments: ${bad[1]}`);
    return 2;
  }
  installExitHandlers();
  const root = path.resolve(import.meta.dirname, '..', '..');
  const paths = benchPaths(root);
  if (!fs.existsSync(path.join(root, 'dist', 'cli', 'main.js'))) {
    console.error('bench:instruments: dist/ is empty; run `npm run build` first');
    return 1;
  }
  const { defaultMode } = clusterdModes(paths);
  const baselines = allSystems({ paths, pm2: undefined, modes: [] }).filter((system) => system.id === 'single' || system.id === 'cluster-rr');
  const clusterd = { ...clusterdSystem(paths, defaultMode, true), id: 'clusterd-default', label: `clusterd ${defaultMode}, default instruments` };
  const bare = { ...bareClusterdSystem(paths, defaultMode), id: 'clusterd-bare', label: `clusterd ${defaultMode}, stats, --report-blocked and --watchdog off` };
  const systems: SystemSpec[] = [...baselines, clusterd, bare];
  const context: Context = { paths, workers: numbers.workers, port: numbers.port, scratch: path.join(paths.cache, 'tmp'), quiet: numbers.quiet, runId: 0 };
  fs.mkdirSync(context.scratch, { recursive: true });
  const date = new Date().toISOString();
  const out = values.out ?? path.join(root, 'bench-results', `instruments-${date.replace(/[:.]/g, '-')}`);
  fs.mkdirSync(out, { recursive: true });

  const memory: MemoryRecord[] = [];
  const loads: LoadRecord[] = [];
  const captures: CaptureRecord[] = [];
  for (let round = 1; round <= numbers.rounds; round++) {
    for (const system of round % 2 ? systems : [...systems].reverse()) {
      const tag = `[round ${round}/${numbers.rounds}] ${system.label}`;
      try {
        const record = await measureMemory(system, round, context);
        memory.push(record);
        console.error(`${tag}: RSS ${record.rss.map(mb).join(', ')} MB, idle CPU ${record.idleCpuPct.toFixed(2)}%${record.afterStack ? `; after stack ${record.afterStack.map(mb).join(', ')} MB` : ''}`);
      } catch (error) {
        console.error(`${tag}: FAILED ${(error as Error).message}`);
      }
    }
    try {
      const records = await measureUnderLoad(clusterd, round, context, { rate: numbers.rate, windowS: numbers.window });
      loads.push(...records);
      console.error(`[round ${round}/${numbers.rounds}] under load: ${records.map((record) => `${record.window} ${record.cpuUsPerRequest.toFixed(1)} µs/req p99 ${record.generator.latencyMs.p99.toFixed(2)} ms`).join('; ')}`);
    } catch (error) {
      console.error(`[round ${round}/${numbers.rounds}] under load: FAILED ${(error as Error).message}`);
    }
    try {
      const records = await measureCaptures(clusterd, round, context, numbers.rate);
      captures.push(...records);
      console.error(`[round ${round}/${numbers.rounds}] captures: ${records.map((record) => `${record.load ? 'loaded' : 'idle'} first ${record.firstMs.toFixed(1)} ms, then ${median(record.laterMs)?.toFixed(1)} ms`).join('; ')}`);
    } catch (error) {
      console.error(`[round ${round}/${numbers.rounds}] captures: FAILED ${(error as Error).message}`);
    }
  }

  const header = [
    "# clusterd's instruments: what they cost a worker",
    '',
    `Command: \`npm run bench:instruments${argv.length ? ` -- ${argv.join(' ')}` : ''}\``,
    '',
    `- Date: ${date}; Node ${process.version}; ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${os.availableParallelism()} cores, ${os.type()} ${os.release()}`,
    `- ${numbers.workers} workers, ${numbers.rounds} round(s), medians. Memory: RSS (VmRSS) of every serving process after ${LIGHT_LOAD.durationS} s of keep-alive load at ${LIGHT_LOAD.rate} req/s and ${SETTLE_MS / 1000} s idle; idle CPU over the next ${(SETTLE_MS * 2) / 1000} s`,
    `- Under load: open-loop keep-alive at ${numbers.rate} req/s, ${numbers.window} s windows`,
    '',
  ].join('\n');
  const text = `${header}\n${report(memory, loads, captures, systems)}\n`;
  fs.writeFileSync(path.join(out, 'results.json'), `${JSON.stringify({ kind: 'instruments', date, options: numbers, memory, loads, captures }, null, 2)}\n`);
  fs.writeFileSync(path.join(out, 'results.md'), text);
  console.log(text);
  console.error(`bench:instruments: wrote ${path.relative(root, out)}/results.json, results.md`);
  return memory.length ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
