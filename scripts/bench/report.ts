// Markdown for results.md (and stdout): the environment, then one table per closed-loop workload
// (report-open.ts has the open-loop ones, targets.ts the targets).
import { cpuTickSeconds } from './processes.js';
import { stepTitle, type Step } from './steps.js';
import type { Summary } from './summary.js';

export interface Environment {
  date: string;
  command: string;
  node: string;
  cpuModel: string;
  cores: number;
  availableParallelism: number;
  kernel: string;
  memoryGiB: number;
  loadAverage: number[];
  loadGenerator: { name: string; version: string; threads: number; connections: number; connectionPerRequest: string };
  /** The open-loop generator's settings, when open-loop workloads ran. */
  openLoop?: { version: string; pool: number; maxInFlight: number };
  pm2: string | undefined;
  /** defaultMode: what `clusterd start --help` gives as --balance's default (absent in older files: rr). */
  clusterd: { commit: string; modes: string[]; defaultMode?: string };
  workers: number;
  /** The scaling run's worker counts, instead of `workers`. */
  workerCounts?: number[];
  rounds: number;
  durationS: number;
  warmupS: number;
  quiet: { pct: number; maxWaitS: number; noisyRetries?: number };
}

export const num = (value: number | undefined, digits = 2) => (value === undefined ? 'n/a' : value.toFixed(digits));
export const pct = (value: number | undefined, digits = 1) => (value === undefined ? 'n/a' : `${(value * 100).toFixed(digits)}%`);
export const cpu = (value: number | undefined) => (value === undefined ? 'n/a' : `${value.toFixed(1)}%`);
/** Microseconds: whole numbers, one decimal below 10. */
export const us = (value: number | undefined) => (value === undefined ? 'n/a' : value.toFixed(value < 10 ? 1 : 0));

/**
 * The master's CPU figures, read in clock ticks of 10 ms: below one tick's worth (0.5% of a core over a
 * 2 s window) the figure is "<" that, not 0.0%, which would claim a precision the kernel does not keep.
 */
export const masterCpu = (row: Summary) => belowTick(row.masterCpuPct, row.masterTick?.pct, cpu);
export const masterUs = (row: Summary, per: 'perConnection' | 'perRequest') =>
  belowTick(per === 'perConnection' ? row.masterUsPerConnection : row.masterUsPerRequest, row.masterTick?.[per], us);

function belowTick(value: number | undefined, tick: number | undefined, format: (value: number | undefined) => string): string {
  return value !== undefined && tick !== undefined && value < tick ? `<${format(tick)}` : format(value);
}

/** The header every results.md starts with. */
export function environmentMarkdown(env: Environment, notes: string[]): string {
  const lines = [
    `Command: \`${env.command}\``,
    '',
    `- Date: ${env.date}`,
    `- Machine: ${env.cpuModel}, ${env.cores} cores (availableParallelism ${env.availableParallelism}), ${env.memoryGiB} GiB, ${env.kernel}, load average before the run ${env.loadAverage.map((load) => load.toFixed(2)).join(' ')}`,
    `- Node ${env.node}; PM2 ${env.pm2 ?? 'not available'}; clusterd ${env.clusterd.commit} (balance modes: ${env.clusterd.modes.join(', ') || 'none found'}; default ${env.clusterd.defaultMode ?? 'rr'})`,
    `- Load generator: ${env.loadGenerator.name} ${env.loadGenerator.version}, ${env.loadGenerator.threads} thread(s), ${env.loadGenerator.connections} connections, on the same machine; new connection per request: ${env.loadGenerator.connectionPerRequest}`,
    ...(env.openLoop
      ? [
          `- Open-loop generator (d, e): ${env.openLoop.version}, a child process on the same machine; keep-alive pool of ${env.openLoop.pool} connections, at most ${env.openLoop.maxInFlight} connections at once with a new connection per request`,
        ]
      : []),
    `- ${env.workerCounts ? `worker counts ${env.workerCounts.join(', ')}` : `${env.workers} workers per system`}; ${env.rounds} interleaved rounds of ${env.durationS} s after ${env.warmupS} s of warm-up; figures are medians over rounds`,
  ];
  if (env.quiet.pct > 0) {
    lines.push(`- Before each start the benchmark waited (at most ${env.quiet.maxWaitS} s) until other processes used less than ${env.quiet.pct}% of one core`);
    if (env.quiet.noisyRetries) {
      lines.push(
        `- A measurement during which other processes used more than ${env.quiet.pct}% of one core, or in which the open-loop generator did not hold its rate, was repeated (at most ${env.quiet.noisyRetries} times); the best attempt counts (rate held, then quietest)`,
      );
    }
  }
  for (const note of notes) lines.push(`- Note: ${note}`);
  return `${lines.join('\n')}\n`;
}

/** One closed-loop workload's table. */
export function workloadMarkdown(step: Step, rows: Summary[]): string {
  const lines = [
    `## ${stepTitle(step)}`,
    '',
    '| system | req/s | ratio vs node:cluster rr | p50 ms | p99 ms | max ms | errors | worker CV | master CPU | master us/conn | master us/req | req per CPU-s | rounds |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const notes: string[] = [];
  for (const row of rows) {
    if (row.note) notes.push(`${row.label}: ${row.note}`);
    if (row.rounds === 0) {
      lines.push(`| ${row.label} | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | 0 |`);
      continue;
    }
    lines.push(
      `| ${row.label} | ${Math.round(row.rps ?? 0)} | ${num(row.ratio)} | ${num(row.p50)} | ${num(row.p99)} | ${num(row.max, 1)} | ${num(row.errors, 0)} | ${pct(row.workerCv)} | ${masterCpu(row)} | ${masterUs(row, 'perConnection')} | ${masterUs(row, 'perRequest')} | ${num(row.requestsPerCpuS, 0)} | ${row.rounds} |`,
    );
  }
  if (notes.length) lines.push('', ...notes.map((note) => `- ${note}`));
  return `${lines.join('\n')}\n`;
}

/** What the columns mean, printed under the tables; `durationS`, the measured window, sets the CPU figures' resolution. */
export const legend = (durationS: number) => `req/s: completed responses per second over the measured window. ratio: req/s divided by node:cluster
round-robin's in the same run. p50/p99/max: response latency from the load generator (connect time excluded).
errors: socket errors + non-2xx + timeouts (5 s). worker CV: standard deviation / mean of the requests each
serving process counted (0% = perfectly even). master CPU: CPU time of the master (node:cluster primary,
clusterd master, PM2 God daemon) over the window, in % of one core; n/a for one process. The kernel counts
it in clock ticks of ${cpuTickSeconds() * 1000} ms: over this run's ${durationS} s windows one tick is ${((cpuTickSeconds() / durationS) * 100).toFixed(2)}% of a core, and a master
that used less than one tick shows as "<" one tick's worth, its us/conn and us/req likewise. master us/conn and
us/req: the master's CPU microseconds in the window divided by the connections the workers accepted and the
requests they served in it (their count files); with keep-alive, few connections share a whole window of
the master's background work, so us/conn is large there and us/req is the figure to read. req per CPU-s:
responses per CPU-second spent by the master and the workers together, which moves less than req/s when
other processes take CPU from the benchmark.
`;
