// `npm run bench -- --scaling`: clusterd with 1..N workers against one plain node process, on the
// hello-world workloads, in interleaved rounds. Efficiency = req/s / (workers x one process's req/s).
import fs from 'node:fs';
import path from 'node:path';
import { barChart } from './chart.js';
import type { LoadGenerator } from './load/types.js';
import type { BenchOptions } from './options.js';
import { environmentMarkdown, type Environment } from './report.js';
import { runRounds, scheduleFrom, type Entry } from './runner.js';
import { legacySteps } from './steps.js';
import { noiseNote, summarise, type Summary } from './summary.js';
import { allSystems, clusterdSystem, type Paths } from './systems.js';
import { workloads, type WorkloadId } from './workloads.js';

interface ScalingRow {
  mode: string;
  workers: number;
  rps?: number;
  p99?: number;
  /** req/s divided by one plain process's req/s. */
  speedup?: number;
  /** speedup / workers. */
  efficiency?: number;
  note?: string;
}

/** Runs the scaling schedule and writes its results; returns the exit code. */
export async function runScaling({
  options,
  paths,
  generator,
  environment,
  modes,
  notes,
  out,
}: {
  options: BenchOptions;
  paths: Paths;
  generator: LoadGenerator;
  environment: Environment;
  modes: string[];
  notes: string[];
  out: string;
}): Promise<number> {
  const single = allSystems({ paths, pm2: undefined, modes: [] }).find((system) => system.id === 'single');
  if (!single) throw new Error('no single-process system');
  const entries: Entry[] = [{ id: single.id, label: single.label, spec: single, workers: 1 }];
  for (const mode of modes) {
    if (!environment.clusterd.modes.includes(mode)) notes.push(`clusterd does not list balance mode ${mode}; it will likely fail to start`);
    for (const workers of options.counts) {
      entries.push({ id: `clusterd-${mode}@${workers}`, label: `clusterd ${mode} x${workers}`, spec: clusterdSystem(paths, mode, true), workers });
    }
  }
  const workloadIds = options.workloads;
  console.error(`bench: scaling ${modes.join(', ')} over ${options.counts.join(', ')} workers; workloads ${workloadIds.join(', ')}`);
  const dropped = new Map<string, string>();
  const records = await runRounds(scheduleFrom(options, { entries, steps: legacySteps(workloadIds), generator, scratch: path.join(paths.cache, 'tmp') }), dropped);

  const noise = noiseNote(records, environment.cores);
  if (noise) notes.push(noise);
  const summaries = Object.fromEntries(workloadIds.map((workload) => [workload, summarise(records, entries, workload, dropped, 'single')])) as Record<
    WorkloadId,
    Summary[]
  >;
  const rows = Object.fromEntries(
    workloadIds.map((workload) => {
      const byId = new Map(summaries[workload].map((row) => [row.system, row]));
      const list: ScalingRow[] = [];
      for (const mode of modes) {
        for (const workers of options.counts) {
          const row = byId.get(`clusterd-${mode}@${workers}`);
          const speedup = row?.ratio;
          list.push({
            mode,
            workers,
            rps: row?.rps,
            p99: row?.p99,
            speedup,
            efficiency: speedup === undefined ? undefined : speedup / workers,
            ...(row?.note ? { note: row.note } : {}),
          });
        }
      }
      return [workload, { single: byId.get('single'), rows: list }];
    }),
  ) as Record<WorkloadId, { single: Summary | undefined; rows: ScalingRow[] }>;

  const fmt = (value: number | undefined, digits: number) => (value === undefined ? 'n/a' : value.toFixed(digits));
  const sections = workloadIds.map((workload) => {
    const { single: base, rows: list } = rows[workload];
    const lines = [
      `## ${workloads[workload].title}`,
      '',
      `One plain node process: ${fmt(base?.rps, 0)} req/s, p99 ${fmt(base?.p99, 2)} ms.`,
      '',
      '| clusterd mode | workers | req/s | speed-up vs one process | efficiency | p99 ms |',
      '|---|---:|---:|---:|---:|---:|',
      ...list.map(
        (row) => `| ${row.mode} | ${row.workers} | ${fmt(row.rps, 0)} | ${fmt(row.speedup, 2)} | ${row.efficiency === undefined ? 'n/a' : `${(row.efficiency * 100).toFixed(0)}%`} | ${fmt(row.p99, 2)} |`,
      ),
    ];
    const failures = [...new Set(list.filter((row) => row.note).map((row) => `- clusterd ${row.mode} x${row.workers}: ${row.note}`))];
    return `${[...lines, ...(failures.length ? ['', ...failures] : [])].join('\n')}\n`;
  });
  const markdown = [
    '# clusterd scaling benchmark',
    '',
    environmentMarkdown(environment, notes),
    ...sections,
    'speed-up: req/s divided by one plain node process\'s req/s in the same run; efficiency: speed-up / workers\n' +
      '(100% = perfectly linear). The load generator runs on the same machine and takes CPU from the workers.\n',
  ].join('\n');
  const chart = barChart({
    title: `clusterd scaling efficiency (req/s / (workers x one process)), medians of ${environment.rounds} rounds`,
    yLabel: 'efficiency',
    reference: 1,
    groups: workloadIds.flatMap((workload) =>
      options.counts.map((workers) => ({
        label: `${workload} x${workers}`,
        bars: rows[workload].rows.filter((row) => row.workers === workers).map((row) => ({ series: `clusterd ${row.mode}`, value: row.efficiency })),
      })),
    ),
  });
  const json = { kind: 'scaling', environment, options, notes, modes, counts: options.counts, scaling: rows, summary: summaries, records };
  fs.writeFileSync(path.join(out, 'results.json'), `${JSON.stringify(json, null, 2)}\n`);
  fs.writeFileSync(path.join(out, 'results.md'), markdown);
  fs.writeFileSync(path.join(out, 'chart.svg'), chart);
  console.log(markdown);
  console.error(`bench: wrote ${path.relative(paths.root, out)}/results.json, results.md, chart.svg`);
  return records.some((record) => record.ok) ? 0 : 1;
}
