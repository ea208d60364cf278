// Command-line flags of `npm run bench`, validated once into one typed record.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { MAX_INSTANCES } from '../../src/options.js';
import { WORKLOAD_IDS, type WorkloadId } from './workloads.js';

export type LoadGeneratorChoice = 'auto' | 'wrk' | 'autocannon';

export interface BenchOptions {
  workers: number;
  rounds: number;
  durationS: number;
  warmupS: number;
  quick: boolean;
  /** System ids to run; empty means the default set. */
  systems: string[];
  workloads: WorkloadId[];
  connections: number;
  threads: number;
  loadgen: LoadGeneratorChoice;
  install: boolean;
  build: boolean;
  port: number;
  /** Before each start, wait until other processes use less than this % of one core (0: never wait). */
  quietPct: number;
  /** ...but at most this long. */
  quietWaitS: number;
  /** Times a measurement during which others used more than quietPct% of a core is repeated. */
  noisyRetries: number;
  out: string | undefined;
  /** Render results.md and chart.svg again from this folder's results.json, and run nothing. */
  report: string | undefined;
  scaling: boolean;
  /** Worker counts of the scaling run. */
  counts: number[];
  /** clusterd balance modes of the scaling run; empty means rr plus the best other available one. */
  scalingModes: string[];
  /** Capacities given on the command line (req/s), which skip measuring them: (d) and (e). */
  capacityD: number | undefined;
  capacityE: number | undefined;
  /** (d)'s rates in % of capacity. */
  dRates: number[];
  /** Open loop: keep-alive pool size; most connections at once with a new connection per request. */
  pool: number;
  maxInFlight: number;
}

/** Bounds on the open-loop generator's connections: the machine is shared, keep them finite. */
export const MAX_POOL = 10_000;
export const MAX_IN_FLIGHT = 10_000;
/** The same for the closed-loop generator's connections and threads. */
export const MAX_CONNECTIONS = 10_000;
export const MAX_THREADS = 256;
/** Workers per system (and per scaling count): clusterd's own bound on -i. */
export const MAX_WORKERS = MAX_INSTANCES;

export const usage = `npm run bench -- [options]

Runs every system on the same app with the same worker count, in interleaved rounds, and writes
results.json, results.md and chart.svg into bench-results/<timestamp>/.

  --workers N        workers per system, at most ${MAX_WORKERS} (default: os.availableParallelism() = ${os.availableParallelism()})
  --rounds N         interleaved rounds, medians are taken over them (default 3)
  --duration S       seconds measured per system, workload and round (default 10)
  --warmup S         seconds of unmeasured load before each measurement (default 2)
  --quick            3 rounds of 1 s, no warm-up, on node:cluster rr, clusterd rr and the best other
                     clusterd mode: under two minutes, for development
  --systems LIST     comma-separated system ids (see the list printed at start); "clusterd" = all its modes;
                     cluster-rr-again (node:cluster rr run twice in each round, a control for the noise)
                     and clusterd-MODE-bare (--stats-interval 0 --report-blocked 0 --watchdog 0) only
                     when named
  --workloads LIST   any of a, b, c (closed loop: wrk), d, e (open loop: fixed rates) (default a,b,c,d,e;
                     --quick: a,b,c; --scaling: a,b, and d, e are not allowed there)
  --capacity-d RPS   (d)'s capacity in req/s; default: measure node:cluster rr on (c) with the closed-loop
                     generator for --duration first, in the same run
  --capacity-e RPS   (e)'s capacity in req/s; default: measure node:cluster rr on (a), 2 workers, likewise
  --d-rates LIST     (d)'s rates in % of its capacity (default 50,70,90)
  --pool N           open loop, keep-alive: connections in the pool, all opened up front, at most ${MAX_POOL}
                     (default 64)
  --max-in-flight N  open loop, new connection per request: most connections open at once; later
                     requests wait, and the wait counts in their latency, at most ${MAX_IN_FLIGHT} (default 2000)
  --connections N    concurrent connections of the load generator, at most ${MAX_CONNECTIONS} (default 64)
  --threads N        wrk threads, at most ${MAX_THREADS} (default: a quarter of the cores, at least 1)
  --loadgen NAME     auto (wrk if installed, else autocannon), wrk or autocannon
  --no-install       use only what .bench-cache/ and the machine already hold (offline machines)
  --no-build         skip \`npm run build\` before the run
  --port N           port the app listens on (default 3777)
  --quiet P          before each start, wait until other processes on the machine use less than P% of
                     one core (default 50; 0 = never wait; --quick: 0)
  --quiet-wait S     longest such wait per measurement, then it goes ahead anyway (default 30)
  --noisy-retries N  measure again, up to N times, when other processes used more than the --quiet
                     share during the measurement, or the open-loop generator did not hold its rate;
                     the best attempt counts (rate held, then quietest) (default 2; --quick: 0)
  --out DIR          results folder (default bench-results/<timestamp>)
  --report DIR       render DIR/results.md and DIR/chart.svg again from DIR/results.json; runs nothing
  --scaling          scaling run instead: clusterd with 1..N workers on workloads a and b
  --counts LIST      worker counts of the scaling run, each at most ${MAX_WORKERS} (default 1..N up to 4
                     workers, else 1,2,4,...,N)
  --scaling-modes L  clusterd modes of the scaling run (default: rr and the best other available mode)
  -h, --help         this text
`;

/** Parses argv; throws an Error naming the flag and the value received when one is invalid. */
export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      workers: { type: 'string' },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      quick: { type: 'boolean', default: false },
      systems: { type: 'string' },
      workloads: { type: 'string' },
      connections: { type: 'string' },
      threads: { type: 'string' },
      loadgen: { type: 'string', default: 'auto' },
      'no-install': { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      port: { type: 'string' },
      quiet: { type: 'string' },
      'quiet-wait': { type: 'string' },
      'noisy-retries': { type: 'string' },
      out: { type: 'string' },
      report: { type: 'string' },
      scaling: { type: 'boolean', default: false },
      counts: { type: 'string' },
      'scaling-modes': { type: 'string' },
      'capacity-d': { type: 'string' },
      'capacity-e': { type: 'string' },
      'd-rates': { type: 'string' },
      pool: { type: 'string' },
      'max-in-flight': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';

  const cores = os.availableParallelism();
  const quick = values.quick ?? false;
  const workers = integer('--workers', values.workers, cores, 1, MAX_WORKERS);
  const loadgen = values.loadgen ?? 'auto';
  if (loadgen !== 'auto' && loadgen !== 'wrk' && loadgen !== 'autocannon') {
    throw new Error(`Expected \`--loadgen\` to be auto, wrk or autocannon, got \`${loadgen}\``);
  }
  const scaling = values.scaling ?? false;
  const workloads = list(values.workloads) ?? (scaling ? ['a', 'b'] : quick ? ['a', 'b', 'c'] : [...WORKLOAD_IDS]);
  const allowed: readonly string[] = scaling ? ['a', 'b', 'c'] : WORKLOAD_IDS;
  for (const id of workloads) {
    if (!allowed.includes(id)) throw new Error(`Expected \`--workloads\` to hold ${allowed.join(', ')}${scaling ? ' with --scaling' : ''}, got \`${id}\``);
  }
  const dRates = (list(values['d-rates']) ?? ['50', '70', '90']).map((value) => bounded('--d-rates', value, 1, 1000));
  if (dRates.length === 0) throw new Error('Expected `--d-rates` to hold at least one rate, got ``');
  const counts = (list(values.counts) ?? defaultCounts(workers)).map((value) => integer('--counts', value, 1, 1, MAX_WORKERS));
  return {
    workers,
    rounds: integer('--rounds', values.rounds, 3, 1),
    durationS: number('--duration', values.duration, quick ? 1 : 10, 0.5),
    warmupS: number('--warmup', values.warmup, quick ? 0 : 2, 0),
    quick,
    systems: list(values.systems) ?? [],
    workloads: workloads as WorkloadId[],
    connections: integer('--connections', values.connections, 64, 1, MAX_CONNECTIONS),
    threads: integer('--threads', values.threads, Math.max(1, Math.floor(cores / 4)), 1, MAX_THREADS),
    loadgen,
    install: !values['no-install'],
    build: !values['no-build'],
    port: integer('--port', values.port, 3777, 1),
    quietPct: number('--quiet', values.quiet, quick ? 0 : 50, 0),
    quietWaitS: number('--quiet-wait', values['quiet-wait'], 30, 0),
    noisyRetries: integer('--noisy-retries', values['noisy-retries'], quick ? 0 : 2, 0),
    out: values.out,
    report: values.report,
    scaling,
    counts: [...new Set(counts)].sort((x, y) => x - y),
    scalingModes: list(values['scaling-modes']) ?? [],
    capacityD: values['capacity-d'] === undefined ? undefined : bounded('--capacity-d', values['capacity-d'], 1, 10_000_000),
    capacityE: values['capacity-e'] === undefined ? undefined : bounded('--capacity-e', values['capacity-e'], 1, 10_000_000),
    dRates: [...new Set(dRates)].sort((x, y) => x - y),
    pool: integer('--pool', values.pool, 64, 1, MAX_POOL),
    maxInFlight: integer('--max-in-flight', values['max-in-flight'], 2000, 1, MAX_IN_FLIGHT),
  };
}

/** 1..workers on small machines; powers of two and `workers` itself past 4. */
function defaultCounts(workers: number): string[] {
  const counts: number[] = [];
  for (let n = 1; n < workers; n = workers <= 4 ? n + 1 : n * 2) counts.push(n);
  counts.push(workers);
  return counts.map(String);
}

function list(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

function number(flag: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value.replace(/s$/, ''));
  if (!Number.isFinite(parsed) || parsed < min) {
    throw new Error(`Expected \`${flag}\` to be a number of at least ${min}, got \`${value}\``);
  }
  return parsed;
}

function integer(flag: string, value: string | undefined, fallback: number, min: number, max = Infinity): number {
  const parsed = number(flag, value, fallback, min);
  if (!Number.isInteger(parsed)) throw new Error(`Expected \`${flag}\` to be an integer, got \`${value}\``);
  if (parsed > max) throw new Error(`Expected \`${flag}\` to be at most ${max}, got \`${value}\``);
  return parsed;
}

/** A number in [min, max], for flags whose every value is given (list items, capacities). */
function bounded(flag: string, value: string, min: number, max: number): number {
  const parsed = number(flag, value, min, min);
  if (parsed > max) throw new Error(`Expected \`${flag}\` to be a number between ${min} and ${max}, got \`${value}\``);
  return parsed;
}
