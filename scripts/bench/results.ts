// The results folder of a comparison run: results.json (everything), results.md and chart.svg, both
// derived from the JSON, so `--report DIR` can render them again from a finished run.
import fs from 'node:fs';
import path from 'node:path';
import type { Capacity } from './capacity.js';
import { barChart } from './chart.js';
import { environmentMarkdown, legend, workloadMarkdown, type Environment } from './report.js';
import { openLegend, openStepMarkdown } from './report-open.js';
import type { RunRecord } from './runner.js';
import { legacySteps, type Step } from './steps.js';
import { NOISE_PREFIX, noiseNote, summarise, type Summary } from './summary.js';
import { targetsMarkdown } from './targets.js';
import type { WorkloadId } from './workloads.js';

export interface ResultsFile {
  environment: Environment;
  options: unknown;
  /** Notes gathered while setting up (PM2 missing, capacities...); the noise note is derived, not stored here. */
  notes: string[];
  systems: Array<{ id: string; label: string; workers: number; dropped?: string }>;
  workloads: WorkloadId[];
  /** What the rounds measured; files written before steps existed have one per workload. */
  steps: Step[];
  /** The open-loop workloads' capacities, and how they were obtained. */
  capacity?: Capacity[];
  /** Medians per step key, then per system. */
  summary: Partial<Record<string, Summary[]>>;
  records: RunRecord[];
}

/** Summarises, writes the three files into `out` and returns the Markdown. */
export function writeResults(out: string, data: Omit<ResultsFile, 'summary'>): string {
  const dropped = new Map(data.systems.flatMap((system) => (system.dropped ? [[system.id, system.dropped] as const] : [])));
  const summary: Partial<Record<string, Summary[]>> = {};
  for (const step of data.steps) summary[step.key] = summarise(data.records, data.systems, step.key, dropped);
  const file: ResultsFile = { ...data, summary };
  fs.writeFileSync(path.join(out, 'results.json'), `${JSON.stringify(file, null, 2)}\n`);
  const markdown = render(file);
  fs.writeFileSync(path.join(out, 'results.md'), markdown);
  fs.writeFileSync(path.join(out, 'chart.svg'), chart(file));
  return markdown;
}

/** Renders results.md and chart.svg again from `dir`/results.json; returns the Markdown. */
export function rerender(dir: string): string {
  const data = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as Partial<ResultsFile> & { kind?: string };
  if (data.kind === 'scaling' || !Array.isArray(data.records) || !data.environment || !data.systems) {
    throw new Error(`${dir}/results.json is not the results of a comparison run`);
  }
  // Files written before `workloads` or `steps` were stored, or with the noise note among the notes, still render.
  const workloads = data.workloads ?? (Object.keys(data.summary ?? {}) as WorkloadId[]);
  const steps = data.steps ?? legacySteps(workloads);
  const notes = (data.notes ?? []).filter((note) => !note.startsWith(NOISE_PREFIX));
  return writeResults(dir, {
    environment: data.environment,
    options: data.options,
    notes,
    systems: data.systems,
    workloads,
    steps,
    ...(data.capacity ? { capacity: data.capacity } : {}),
    records: data.records,
  });
}

function render(file: ResultsFile): string {
  const notes = [...file.notes];
  const noise = noiseNote(file.records, file.environment.cores);
  if (noise) notes.push(noise);
  if (!file.systems.some((system) => system.id === 'cluster-rr')) notes.push('node:cluster rr was not run, so there are no ratios');
  const open = file.steps.some((step) => step.rate !== undefined);
  const options = file.options as { pool?: number; maxInFlight?: number } | undefined;
  return [
    '# clusterd benchmark',
    '',
    environmentMarkdown(file.environment, notes),
    ...file.steps.map((step) =>
      step.rate === undefined ? workloadMarkdown(step, file.summary[step.key] ?? []) : openStepMarkdown(step, file.summary[step.key] ?? [], file.records),
    ),
    legend(file.environment.durationS),
    ...(open ? [openLegend({ pool: options?.pool ?? 64, maxInFlight: options?.maxInFlight ?? 2000 })] : []),
    targetsMarkdown(file.summary, file.steps, file.environment.clusterd.defaultMode),
  ].join('\n');
}

/** req/s relative to node:cluster rr, for the closed-loop steps (an open-loop step's req/s is its rate). */
function chart(file: ResultsFile): string {
  return barChart({
    title: `req/s relative to node:cluster round-robin (${file.environment.workers} workers, medians of ${file.environment.rounds} rounds)`,
    yLabel: 'req/s ÷ node:cluster rr',
    reference: 1,
    groups: file.steps
      .filter((step) => step.rate === undefined)
      .map((step) => ({
        label: `workload ${step.key}`,
        bars: (file.summary[step.key] ?? []).map((row) => ({ series: row.label, value: row.ratio })),
      })),
  });
}
