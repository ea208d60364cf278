// The results folder of a comparison run: results.json (everything), results.md and chart.svg, both
// derived from the JSON, so `--report DIR` can render them again from a finished run.
import fs from 'node:fs';
import path from 'node:path';
import { barChart } from './chart.js';
import { environmentMarkdown, legend, targetsMarkdown, workloadMarkdown, type Environment } from './report.js';
import { NOISE_PREFIX, noiseNote, summarise, type RunRecord, type Summary } from './runner.js';
import type { WorkloadId } from './workloads.js';

export interface ResultsFile {
  environment: Environment;
  options: unknown;
  /** Notes gathered while setting up (PM2 missing, ...); the noise note is derived, not stored here. */
  notes: string[];
  systems: Array<{ id: string; label: string; workers: number; dropped?: string }>;
  workloads: WorkloadId[];
  summary: Partial<Record<WorkloadId, Summary[]>>;
  records: RunRecord[];
}

/** Summarises, writes the three files into `out` and returns the Markdown. */
export function writeResults(out: string, data: Omit<ResultsFile, 'summary'>): string {
  const dropped = new Map(data.systems.flatMap((system) => (system.dropped ? [[system.id, system.dropped] as const] : [])));
  const summary: Partial<Record<WorkloadId, Summary[]>> = {};
  for (const workload of data.workloads) summary[workload] = summarise(data.records, data.systems, workload, dropped);
  const file: ResultsFile = { ...data, summary };
  fs.writeFileSync(path.join(out, 'results.json'), `${JSON.stringify(file, null, 2)}\n`);
  const markdown = render(file);
  fs.writeFileSync(path.join(out, 'results.md'), markdown);
  fs.writeFileSync(path.join(out, 'chart.svg'), chart(file));
  return markdown;
}

/** Renders results.md and chart.svg again from `dir`/results.json; returns the Markdown. */
export function rerender(dir: string): string {
  const data = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as ResultsFile & { kind?: string };
  if (data.kind === 'scaling' || !Array.isArray(data.records)) throw new Error(`${dir}/results.json is not the results of a comparison run`);
  // Files written before `workloads` was stored, or with the noise note among the notes, still render.
  const workloads = data.workloads ?? (Object.keys(data.summary) as WorkloadId[]);
  const notes = data.notes.filter((note) => !note.startsWith(NOISE_PREFIX));
  return writeResults(dir, { environment: data.environment, options: data.options, notes, systems: data.systems, workloads, records: data.records });
}

function render(file: ResultsFile): string {
  const notes = [...file.notes];
  const noise = noiseNote(file.records, file.environment.cores);
  if (noise) notes.push(noise);
  if (!file.systems.some((system) => system.id === 'cluster-rr')) notes.push('node:cluster rr was not run, so there are no ratios');
  return [
    '# clusterd benchmark',
    '',
    environmentMarkdown(file.environment, notes),
    ...file.workloads.map((workload) => workloadMarkdown(workload, file.summary[workload] ?? [])),
    legend,
    targetsMarkdown(file.summary),
  ].join('\n');
}

function chart(file: ResultsFile): string {
  return barChart({
    title: `req/s relative to node:cluster round-robin (${file.environment.workers} workers, medians of ${file.environment.rounds} rounds)`,
    yLabel: 'req/s ÷ node:cluster rr',
    reference: 1,
    groups: file.workloads.map((workload) => ({
      label: `workload ${workload}`,
      bars: (file.summary[workload] ?? []).map((row) => ({ series: row.label, value: row.ratio })),
    })),
  });
}
