// Markdown for results.md (and stdout): the environment, then one table per workload.
import type { Summary } from './runner.js';
import { workloads, type WorkloadId } from './workloads.js';

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
  pm2: string | undefined;
  clusterd: { commit: string; modes: string[] };
  workers: number;
  /** The scaling run's worker counts, instead of `workers`. */
  workerCounts?: number[];
  rounds: number;
  durationS: number;
  warmupS: number;
  quiet: { pct: number; maxWaitS: number; noisyRetries?: number };
}

const num = (value: number | undefined, digits = 2) => (value === undefined ? 'n/a' : value.toFixed(digits));
const pct = (value: number | undefined, digits = 1) => (value === undefined ? 'n/a' : `${(value * 100).toFixed(digits)}%`);
const cpu = (value: number | undefined) => (value === undefined ? 'n/a' : `${value.toFixed(1)}%`);

/** The header every results.md starts with. */
export function environmentMarkdown(env: Environment, notes: string[]): string {
  const lines = [
    `Command: \`${env.command}\``,
    '',
    `- Date: ${env.date}`,
    `- Machine: ${env.cpuModel}, ${env.cores} cores (availableParallelism ${env.availableParallelism}), ${env.memoryGiB} GiB, ${env.kernel}, load average before the run ${env.loadAverage.map((load) => load.toFixed(2)).join(' ')}`,
    `- Node ${env.node}; PM2 ${env.pm2 ?? 'not available'}; clusterd ${env.clusterd.commit} (balance modes: ${env.clusterd.modes.join(', ') || 'none found'})`,
    `- Load generator: ${env.loadGenerator.name} ${env.loadGenerator.version}, ${env.loadGenerator.threads} thread(s), ${env.loadGenerator.connections} connections, on the same machine; new connection per request: ${env.loadGenerator.connectionPerRequest}`,
    `- ${env.workerCounts ? `worker counts ${env.workerCounts.join(', ')}` : `${env.workers} workers per system`}; ${env.rounds} interleaved rounds of ${env.durationS} s after ${env.warmupS} s of warm-up; figures are medians over rounds`,
  ];
  if (env.quiet.pct > 0) {
    lines.push(`- Before each start the benchmark waited (at most ${env.quiet.maxWaitS} s) until other processes used less than ${env.quiet.pct}% of one core`);
    if (env.quiet.noisyRetries) {
      lines.push(`- A measurement during which other processes used more than ${env.quiet.pct}% of one core was repeated (at most ${env.quiet.noisyRetries} times); the quietest attempt counts`);
    }
  }
  for (const note of notes) lines.push(`- Note: ${note}`);
  return `${lines.join('\n')}\n`;
}

/** One workload's table. */
export function workloadMarkdown(workload: WorkloadId, rows: Summary[]): string {
  const lines = [
    `## ${workloads[workload].title}`,
    '',
    '| system | req/s | ratio vs node:cluster rr | p50 ms | p99 ms | max ms | errors | worker CV | master CPU | req per CPU-s | rounds |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const notes: string[] = [];
  for (const row of rows) {
    if (row.note) notes.push(`${row.label}: ${row.note}`);
    if (row.rounds === 0) {
      lines.push(`| ${row.label} | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | 0 |`);
      continue;
    }
    lines.push(
      `| ${row.label} | ${Math.round(row.rps ?? 0)} | ${num(row.ratio)} | ${num(row.p50)} | ${num(row.p99)} | ${num(row.max, 1)} | ${num(row.errors, 0)} | ${pct(row.workerCv)} | ${cpu(row.masterCpuPct)} | ${num(row.requestsPerCpuS, 0)} | ${row.rounds} |`,
    );
  }
  if (notes.length) lines.push('', ...notes.map((note) => `- ${note}`));
  return `${lines.join('\n')}\n`;
}

/** What the columns mean, printed under the tables. */
export const legend = `req/s: completed responses per second over the measured window. ratio: req/s divided by node:cluster
round-robin's in the same run. p50/p99/max: response latency from the load generator (connect time excluded).
errors: socket errors + non-2xx + timeouts (5 s). worker CV: standard deviation / mean of the requests each
serving process counted (0% = perfectly even). master CPU: CPU time of the master (node:cluster primary,
clusterd master, PM2 God daemon) over the window, in % of one core; n/a for one process. req per CPU-s:
responses per CPU-second spent by the master and the workers together, which moves less than req/s when
other processes take CPU from the benchmark.
`;

/** Issue 5's targets for a 2-core machine, checked against this run's medians. */
export function targetsMarkdown(summary: Partial<Record<WorkloadId, Summary[]>>): string {
  const row = (workload: WorkloadId, id: string) => summary[workload]?.find((entry) => entry.system === id && entry.rounds > 0);
  const lines = ['## Targets (issue 5, for 2 cores)', '', '| target | measured | met |', '|---|---|---|'];
  const add = (target: string, measured: string | undefined, met: boolean | undefined) =>
    lines.push(`| ${target} | ${measured ?? 'n/a'} | ${met === undefined ? 'n/a' : met ? 'yes' : 'no'} |`);
  const ratio = (value: number | undefined) => (value === undefined ? undefined : `${value.toFixed(2)}x`);

  for (const workload of ['a', 'b'] as const) {
    const rr = row(workload, 'clusterd-rr')?.ratio;
    add(`clusterd rr req/s >= 1.0x node:cluster rr on (${workload})`, ratio(rr), rr === undefined ? undefined : rr >= 1);
  }
  const modes = (summary.b ?? []).filter((entry) => entry.system.startsWith('clusterd-') && !entry.system.endsWith('-nostats') && entry.ratio !== undefined);
  const best = modes.sort((x, y) => (y.ratio ?? 0) - (x.ratio ?? 0))[0];
  add('best clusterd mode req/s >= 1.1x on (b)', best ? `${ratio(best.ratio)} (${best.label})` : undefined, best ? (best.ratio ?? 0) >= 1.1 : undefined);

  const least = row('c', 'clusterd-least');
  const base = row('c', 'cluster-rr');
  const p99 = least?.p99 !== undefined && base?.p99 ? least.p99 / base.p99 : undefined;
  add(
    'least p99 <= 0.8x node:cluster rr on (c), req/s >= 1.0x',
    p99 === undefined ? (least ? undefined : 'clusterd least not measured') : `p99 ${p99.toFixed(2)}x, req/s ${ratio(least?.ratio)}`,
    p99 === undefined ? undefined : p99 <= 0.8 && (least?.ratio ?? 0) >= 1,
  );

  const on = row('a', 'clusterd-rr');
  const off = row('a', 'clusterd-rr-nostats');
  const cost = on?.rps !== undefined && off?.rps ? 1 - on.rps / off.rps : undefined;
  const cpuCost = on?.requestsPerCpuS !== undefined && off?.requestsPerCpuS ? 1 - on.requestsPerCpuS / off.requestsPerCpuS : undefined;
  add(
    'loop stats cost <= 1% on (a) (clusterd rr vs rr with --stats-interval 0)',
    cost === undefined ? undefined : `${(cost * 100).toFixed(1)}% of req/s; ${cpuCost === undefined ? 'n/a' : `${(cpuCost * 100).toFixed(1)}%`} of req per CPU-s`,
    cost === undefined ? undefined : cost <= 0.01,
  );

  for (const id of ['clusterd-rr', 'clusterd-least']) {
    const cv = row('a', id)?.workerCv;
    add(`worker CV <= 10% on (a) in ${id.replace('clusterd-', '')}`, pct(cv), cv === undefined ? undefined : cv <= 0.1);
  }
  lines.push('', 'One run on a shared 2-core machine: read these next to the noise note above, not as a verdict.');
  return `${lines.join('\n')}\n`;
}
