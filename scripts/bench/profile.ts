// `npm run bench:profile`: where a worker's CPU goes per request, node:cluster against clusterd's modes.
// Each system serves the same load with `--cpu-prof` on every worker; the profiles are cut to the
// measured window (V8's sample times and process.hrtime share CLOCK_MONOTONIC on Linux) and divided
// by the requests served in it. Req/s on a 2-core machine swings by ±20% between rounds; the CPU a
// worker spends per request moves far less, and it says whose code the time goes to.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { prepareLoadGenerator } from './install.js';
import { installExitHandlers, waitFor } from './processes.js';
import { allSystems, benchPaths, clusterdModes, type SystemSpec } from './systems.js';
import { workloads, type WorkloadId } from './workloads.js';

const usage = `npm run bench:profile -- [--workload a|b|c] [--systems LIST] [--duration S] [--warmup S] [--rounds N] [--workers N] [--port N] [--no-install]

Runs the systems (default cluster-rr,clusterd-rr; any of cluster-rr, cluster-none, clusterd-MODE), alternating, with --cpu-prof on every worker, and prints the
worker CPU per request (busy time, no idle) split by whose code ran: Node's, V8's, clusterd's (dist/),
the app's. Defaults: workload b, 10 s measured after 2 s of warm-up, 1 round, 2 workers, port 3778.`;

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Busy microseconds by group and by function, over samples taken in [fromUs, toUs]. */
interface Usage {
  groups: Map<string, number>;
  functions: Map<string, number>;
}

function groupOf(url: string, functionName: string): string {
  if (url.includes('/dist/')) return 'clusterd (dist/)';
  if (url.includes('/scripts/bench/apps/')) return 'the app';
  if (url.startsWith('node:')) return 'Node (JavaScript)';
  if (url === '') return functionName.startsWith('(') ? functionName : 'Node/V8 native';
  return 'other JavaScript';
}

function add(map: Map<string, number>, key: string, us: number): void {
  map.set(key, (map.get(key) ?? 0) + us);
}

function readProfiles(dir: string, fromUs: number, toUs: number): Usage {
  const usage: Usage = { groups: new Map(), functions: new Map() };
  for (const name of fs.readdirSync(dir).filter((file) => file.endsWith('.cpuprofile'))) {
    const profile = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as CpuProfile;
    const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
    let time = profile.startTime;
    profile.samples.forEach((id, index) => {
      const delta = profile.timeDeltas[index] ?? 0;
      time += delta;
      const frame = frames.get(id);
      if (!frame || time < fromUs || time > toUs || frame.functionName === '(idle)') return;
      add(usage.groups, groupOf(frame.url, frame.functionName), delta);
      add(usage.functions, `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\//, '')}:${frame.lineNumber + 1}`, delta);
    });
  }
  return usage;
}

const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

interface Measured {
  system: SystemSpec;
  requests: number;
  rps: number;
  usage: Usage;
}

async function measure(system: SystemSpec, options: { workload: WorkloadId; duration: number; warmup: number; workers: number; port: number; runId: number }, generator: ReturnType<typeof prepareLoadGenerator>['generator']): Promise<Measured> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'clusterd-profile-'));
  const profiles = path.join(scratch, 'profiles');
  const countDir = path.join(scratch, 'counts');
  fs.mkdirSync(countDir, { recursive: true });
  const running = await system.start({
    port: options.port,
    workers: options.workers,
    countDir,
    runId: options.runId,
    workerNodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profiles}`],
  });
  const run = { port: options.port, workload: workloads[options.workload], connections: 64, threads: 1, timeoutS: 5 };
  try {
    let measured: { from: number; to: number; requests: number; rps: number };
    try {
      if (options.warmup > 0) await generator.run({ ...run, durationS: options.warmup });
      const from = monotonicUs();
      const result = await generator.run({ ...run, durationS: options.duration });
      measured = { from, to: monotonicUs(), requests: result.requests, rps: result.rps };
    } finally {
      await running.stop();
    }
    // Each worker writes its profile as it exits; the master may be gone a moment before.
    const written = (): number => (fs.existsSync(profiles) ? fs.readdirSync(profiles).filter((file) => file.endsWith('.cpuprofile')).length : 0);
    await waitFor(() => written() >= options.workers, 10_000, `${options.workers} worker profiles in ${profiles}`);
    return { system, requests: measured.requests, rps: measured.rps, usage: readProfiles(profiles, measured.from, measured.to) };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

function report(results: Measured[]): string {
  const bySystem = new Map<string, { label: string; requests: number; rps: number[]; usage: Usage }>();
  for (const { system, requests, rps, usage } of results) {
    let entry = bySystem.get(system.id);
    if (!entry) bySystem.set(system.id, (entry = { label: system.label, requests: 0, rps: [], usage: { groups: new Map(), functions: new Map() } }));
    entry.requests += requests;
    entry.rps.push(rps);
    for (const [key, us] of usage.groups) add(entry.usage.groups, key, us);
    for (const [key, us] of usage.functions) add(entry.usage.functions, key, us);
  }
  const systems = [...bySystem.values()];
  const perRequest = (entry: (typeof systems)[number], us: number): string => (us / entry.requests).toFixed(1);
  const total = (map: Map<string, number>): number => [...map.values()].reduce((sum, us) => sum + us, 0);
  const groups = [...new Set(systems.flatMap((entry) => [...entry.usage.groups.keys()]))].sort(
    (a, b) => (systems[0]?.usage.groups.get(b) ?? 0) - (systems[0]?.usage.groups.get(a) ?? 0),
  );
  const lines = [
    `| worker CPU per request (us) | ${systems.map((entry) => entry.label).join(' | ')} |`,
    `|---|${systems.map(() => '---:').join('|')}|`,
    `| req/s, each round | ${systems.map((entry) => entry.rps.map((rps) => Math.round(rps)).join(', ')).join(' | ')} |`,
    `| **busy, all** | ${systems.map((entry) => `**${perRequest(entry, total(entry.usage.groups))}**`).join(' | ')} |`,
    ...groups.map((group) => `| ${group} | ${systems.map((entry) => perRequest(entry, entry.usage.groups.get(group) ?? 0)).join(' | ')} |`),
  ];
  for (const entry of systems) {
    lines.push('', `Top functions, ${entry.label} (us per request, self time):`, '');
    const top = [...entry.usage.functions].sort((a, b) => b[1] - a[1]).slice(0, 12);
    for (const [name, us] of top) lines.push(`    ${perRequest(entry, us).padStart(6)}  ${name}`);
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        workload: { type: 'string', default: 'b' },
        systems: { type: 'string', default: 'cluster-rr,clusterd-rr' },
        duration: { type: 'string', default: '10' },
        warmup: { type: 'string', default: '2' },
        rounds: { type: 'string', default: '1' },
        workers: { type: 'string', default: '2' },
        port: { type: 'string', default: '3778' },
        'no-install': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    console.error(`bench:profile: ${(error as Error).message}\n\n${usage}`);
    return 2;
  }
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const numbers = { duration: Number(values.duration), warmup: Number(values.warmup), rounds: Number(values.rounds), workers: Number(values.workers), port: Number(values.port) };
  const bad = Object.entries(numbers).find(([key, value]) => !Number.isFinite(value) || value < (key === 'warmup' ? 0 : 1));
  if (bad || !(values.workload in workloads)) {
    console.error(`bench:profile: ${bad ? `--${bad[0]} must be a number of at least ${bad[0] === 'warmup' ? 0 : 1}` : `--workload must be a, b or c`}`);
    return 2;
  }
  installExitHandlers();
  const paths = benchPaths(path.resolve(import.meta.dirname, '..', '..'));
  if (!fs.existsSync(path.join(paths.root, 'dist', 'cli', 'main.js'))) {
    console.error('bench:profile: dist/ is empty; run `npm run build` first');
    return 1;
  }
  const { generator, note } = prepareLoadGenerator({ choice: 'auto', cache: paths.cache, install: !values['no-install'] });
  if (note) console.error(`bench:profile: ${note}`);
  // The modes clusterd's own CLI offers: a misspelt one is refused here, not by a failed start.
  const { modes } = clusterdModes(paths);
  const known = allSystems({ paths, pm2: undefined, modes }).filter((system) => system.id !== 'single');
  const ids = values.systems.split(',');
  const unknown = ids.filter((id) => !known.some((system) => system.id === id));
  if (unknown.length > 0) {
    console.error(`bench:profile: --systems: unknown ${unknown.map((id) => `\`${id}\``).join(', ')}; give any of ${known.map((system) => system.id).join(', ')}`);
    return 2;
  }
  const systems = ids.map((id) => known.find((system) => system.id === id)!);
  const results: Measured[] = [];
  let runId = 0;
  for (let round = 0; round < numbers.rounds; round++) {
    // Alternate which goes first, as the benchmark's rounds do.
    for (const system of round % 2 === 0 ? systems : [...systems].reverse()) {
      console.error(`bench:profile: round ${round + 1}, ${system.label} ...`);
      results.push(await measure(system, { ...numbers, workload: values.workload as WorkloadId, runId: ++runId }, generator));
    }
  }
  console.log(`Workload (${values.workload}), ${numbers.workers} workers, ${numbers.rounds} round(s) of ${numbers.duration} s, ${generator.name} ${generator.version}, Node ${process.version}\n`);
  console.log(report(results));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
