// `npm run bench`: clusterd against one node process, node:cluster (round-robin and SCHED_NONE) and PM2
// cluster mode, on the same app and worker count, in interleaved rounds. See BENCHMARKS.md.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { capacityMap, capacityNotes, measureCapacities, type Capacity } from './capacity.js';
import { prepareLoadGenerator, preparePm2, type Pm2Install } from './install.js';
import { createOpenLoop, OPEN_LOOP_VERSION } from './load/open-loop.js';
import type { LoadGenerator } from './load/types.js';
import { parseOptions, usage, type BenchOptions } from './options.js';
import { installExitHandlers, onExit, onStopped } from './processes.js';
import type { Environment } from './report.js';
import { rerender, writeResults } from './results.js';
import { runRounds, scheduleFrom, type Entry, type RunRecord } from './runner.js';
import { runScaling } from './scaling.js';
import { stepsFor } from './steps.js';
import { removeStalePm2, removeStaleScratch, stopStaleClusters } from './stale.js';
import { allSystems, benchPaths, clusterdModes, killPm2 } from './systems.js';
import { workloads } from './workloads.js';

/** Preference order when one clusterd mode besides rr is wanted (--quick, --scaling). */
const BEST_MODES = ['least', 'reuseport', 'shared', 'sticky'];

/** The best clusterd mode other than rr that this build offers, if any. */
function bestOtherMode(modes: string[]): string | undefined {
  return BEST_MODES.find((mode) => modes.includes(mode)) ?? modes.find((mode) => mode !== 'rr');
}

async function main(argv: string[]): Promise<number> {
  let options: BenchOptions | 'help';
  try {
    options = parseOptions(argv);
  } catch (error) {
    // One line for a bad flag; the whole usage would bury it.
    console.error(`bench: ${(error as Error).message} (npm run bench -- --help lists the flags)`);
    return 2;
  }
  if (options === 'help') {
    console.log(usage);
    return 0;
  }
  if (options.report) {
    try {
      console.log(rerender(options.report));
      return 0;
    } catch (error) {
      console.error(`bench: ${(error as Error).message}`);
      return 1;
    }
  }
  installExitHandlers();

  const root = path.resolve(import.meta.dirname, '..', '..');
  const paths = benchPaths(root);
  const { cache } = paths;
  const scratch = path.join(cache, 'tmp');
  fs.mkdirSync(scratch, { recursive: true });
  // Count folders left by a run that was killed -9; another run's, still going, stay.
  removeStaleScratch(scratch);
  // This run's own, when it is stopped before a measurement's clean-up could run.
  onStopped(() => {
    for (const name of fs.readdirSync(scratch)) if (name.startsWith(`counts-${process.pid}-`)) fs.rmSync(path.join(scratch, name), { recursive: true, force: true });
  });

  const notes: string[] = [];
  if (options.build) {
    console.error('bench: npm run build ...');
    try {
      execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
    } catch {
      // tsc still emits on type errors; benchmark what dist/ holds, and say so in the results.
      if (!fs.existsSync(path.join(root, 'dist', 'cli', 'main.js'))) {
        console.error('bench: `npm run build` failed and dist/ is empty; fix the build first');
        return 1;
      }
      console.error('bench: `npm run build` failed; going on with dist/ as it is (noted in the results)');
      notes.push('`npm run build` reported errors: clusterd ran from dist/ as tsc left it');
    }
  }

  const pm2Found = options.scaling ? undefined : preparePm2({ cache, install: options.install });
  let pm2: Pm2Install | undefined;
  if (pm2Found && 'note' in pm2Found) notes.push(`PM2 left out: ${pm2Found.note}`);
  else if (pm2Found) {
    pm2 = pm2Found;
    const installed = pm2;
    removeStalePm2(paths, installed); // daemons left by runs that were killed -9
    onExit(() => killPm2(paths, installed));
    onStopped(() => fs.rmSync(paths.pm2Home, { recursive: true, force: true }));
  }

  let generator: LoadGenerator;
  try {
    const prepared = prepareLoadGenerator({ choice: options.loadgen, cache, install: options.install });
    generator = prepared.generator;
    if (prepared.note) notes.push(prepared.note);
  } catch (error) {
    console.error(`bench: ${(error as Error).message}`);
    return 1;
  }

  // Clusters left by runs that were killed -9 still hold their ports: stop them (dist/ is built by now).
  for (const name of stopStaleClusters(paths, (message) => console.error(`bench: ${message}`))) console.error(`bench: stopped ${name}, left by an earlier run`);

  const detected = clusterdModes(paths);
  if (detected.note) notes.push(detected.note);
  const environment = describe({ options, argv, generator, pm2, modes: detected.modes, defaultMode: detected.defaultMode });
  const out = options.out ?? path.join(root, 'bench-results', environment.date.replace(/[:.]/g, '-'));
  fs.mkdirSync(out, { recursive: true });

  if (options.scaling) {
    const modes = options.scalingModes.length ? options.scalingModes : ['rr', bestOtherMode(detected.modes)].filter((mode) => mode !== undefined);
    return runScaling({ options, paths, generator, environment: { ...environment, workerCounts: options.counts }, modes, notes, out });
  }

  const systems = allSystems({ paths, pm2, modes: detected.modes });
  let wanted = options.systems;
  if (wanted.length === 0 && options.quick) {
    const best = bestOtherMode(detected.modes);
    wanted = ['cluster-rr', 'clusterd-rr', ...(best ? [`clusterd-${best}`] : [])];
  }
  const selected = wanted.length
    ? systems.filter((system) => wanted.includes(system.id) || (wanted.includes('clusterd') && system.group === 'clusterd'))
    : systems.filter((system) => !system.optIn);
  const unknown = wanted.filter((id) => id !== 'clusterd' && !systems.some((system) => system.id === id));
  if (unknown.length) notes.push(`unknown or unavailable systems ignored: ${unknown.join(', ')} (known: ${systems.map((system) => system.id).join(', ')})`);
  const entries: Entry[] = selected.map((spec) => ({ id: spec.id, label: spec.label, spec, workers: spec.serving(options.workers) }));
  console.error(`bench: systems ${entries.map((entry) => entry.id).join(', ')}; workloads ${options.workloads.join(', ')}`);
  console.error(`bench: ${generator.name} ${generator.version}; ${options.rounds} rounds x ${options.durationS} s (+${options.warmupS} s warm-up); results in ${path.relative(root, out)}`);

  // Open-loop workloads run at shares of a capacity measured first (or given with --capacity-d/-e).
  const openIds = options.workloads.filter((id) => workloads[id].open);
  let capacity: Capacity[] = [];
  const reference = systems.find((system) => system.id === 'cluster-rr');
  if (openIds.length && reference) {
    capacity = await measureCapacities({ ids: openIds, options, reference, generator, scratch });
    notes.push(...capacityNotes(capacity));
  }
  const steps = stepsFor(options.workloads, { capacities: capacityMap(capacity), ratesPct: { d: options.dRates } });
  const schedule = scheduleFrom(options, { entries, steps, generator, ...(openIds.length ? { openLoop: createOpenLoop() } : {}), scratch });
  console.error(`bench: steps ${steps.map((step) => (step.rate === undefined ? step.key : `${step.key} (${Math.round(step.rate)} req/s)`)).join(', ')}`);

  const dropped = new Map<string, string>();
  const records: RunRecord[] = [];
  const results = (extra: string[] = []) => ({
    environment,
    options,
    notes: [...notes, ...extra],
    systems: entries.map(({ id, label, workers }) => ({ id, label, workers, ...(dropped.has(id) ? { dropped: dropped.get(id) } : {}) })),
    workloads: options.workloads,
    steps,
    capacity,
    records,
  });
  let finished = false;
  // Ctrl-C, SIGTERM or a crash: keep what was measured (the exit hooks run synchronously).
  onExit(() => {
    if (finished || records.length === 0) return;
    writeResults(out, results([`interrupted after ${records.length} measurements: partial results`]));
    console.error(`bench: interrupted; partial results in ${path.relative(root, out)}`);
  });
  try {
    await runRounds(schedule, dropped, records);
  } finally {
    if (pm2) killPm2(paths, pm2);
  }
  finished = true;

  const markdown = writeResults(out, results());
  console.log(markdown);
  console.error(`bench: wrote ${path.relative(root, out)}/results.json, results.md, chart.svg`);
  return records.some((record) => record.ok) ? 0 : 1;
}

function describe({
  options,
  argv,
  generator,
  pm2,
  modes,
  defaultMode,
}: {
  options: BenchOptions;
  argv: string[];
  generator: LoadGenerator;
  pm2: Pm2Install | undefined;
  modes: string[];
  defaultMode: string;
}): Environment {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    command: `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
    node: process.version,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    availableParallelism: os.availableParallelism(),
    kernel: `${os.type()} ${os.release()}`,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    loadAverage: os.loadavg(),
    loadGenerator: {
      name: generator.name,
      version: generator.version,
      threads: generator.name === 'wrk' ? Math.min(options.threads, options.connections) : 1,
      connections: options.connections,
      connectionPerRequest: generator.connectionPerRequest,
    },
    pm2: pm2?.version,
    clusterd: { commit: gitDescribe(), modes, defaultMode },
    ...(options.workloads.some((id) => workloads[id].open) ? { openLoop: { version: OPEN_LOOP_VERSION, pool: options.pool, maxInFlight: options.maxInFlight } } : {}),
    workers: options.workers,
    rounds: options.rounds,
    durationS: generator.roundDuration(options.durationS),
    warmupS: options.warmupS === 0 ? 0 : generator.roundDuration(options.warmupS),
    quiet: { pct: options.quietPct, maxWaitS: options.quietWaitS, noisyRetries: options.noisyRetries },
  };
}

/** The commit clusterd was built from, with "+dirty" for local changes (read-only git calls). */
function gitDescribe(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${commit}+dirty` : commit;
  } catch {
    return 'unknown';
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
