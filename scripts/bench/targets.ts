// Issue 10's targets for a 2-core machine, checked against one run's medians. They are stated for
// clusterd's default balance mode, whatever `clusterd start --help` names as --balance's default
// (rr today), so the table follows the CLI when the default changes.
import { latency } from './report-open.js';
import { masterCpu, pct } from './report.js';
import type { Step } from './steps.js';
import type { Summary } from './summary.js';

type Summaries = Partial<Record<string, Summary[]>>;

/** node:cluster rr run a second time in the same rounds (opt-in, systems.ts). */
const CONTROL = 'cluster-rr-again';

/** Past this share of failed requests a system does not meet a latency target, whatever its p99. */
export const MAX_ERROR_SHARE = 0.01;

const ratio = (value: number | undefined) => (value === undefined ? undefined : `${value.toFixed(2)}x`);

/** The targets table, plus where `least` and `shared` land on the open-loop p99s. */
export function targetsMarkdown(summary: Summaries, steps: Step[], defaultMode = 'rr'): string {
  const id = `clusterd-${defaultMode}`;
  const name = `clusterd ${defaultMode} (default mode)`;
  const row = (key: string, system: string) => summary[key]?.find((entry) => entry.system === system && entry.rounds > 0);
  const lines = ['## Targets (issue 10, for 2 cores)', '', `Checked on ${name}, the default of \`clusterd start --balance\`.`, '', '| target | measured | met |', '|---|---|---|'];
  const add = (target: string, measured: string | undefined, met: boolean | undefined) =>
    lines.push(`| ${target} | ${measured ?? 'n/a'} | ${met === undefined ? 'n/a' : met ? 'yes' : 'no'} |`);
  const atLeast = (target: string, value: number | undefined, limit: number) => add(target, ratio(value), value === undefined ? undefined : value >= limit);

  // With cluster-rr-again in the run (node:cluster rr a second time), each ratio also says what the
  // same system got against itself: the noise on that median, in this run.
  const control = (key: string, field: 'ratio' | 'p99Ratio'): string => {
    const value = row(key, CONTROL)?.[field];
    return value === undefined ? '' : `; node:cluster rr against itself ${value.toFixed(2)}x`;
  };
  const b = row('b', id);
  const atLeastPaired = (target: string, key: string, entry: Summary | undefined, limit: number) =>
    add(target, entry?.ratio === undefined ? undefined : `${ratio(entry.ratio)}${roundsRatio(entry.pairedRatio)}${control(key, 'ratio')}`, entry?.ratio === undefined ? undefined : entry.ratio >= limit);
  atLeastPaired(`${name} req/s >= 2.0x node:cluster rr on (b)`, 'b', b, 2);
  const none = row('b', 'cluster-none');
  atLeast(`${name} req/s >= 0.95x node:cluster SCHED_NONE on (b)`, b?.rps !== undefined && none?.rps ? b.rps / none.rps : undefined, 0.95);
  add(`${name} master CPU <= 2% of a core on (b)`, b?.masterCpuPct === undefined ? undefined : masterCpu(b), b?.masterCpuPct === undefined ? undefined : b.masterCpuPct <= 2);
  const a = row('a', id);
  atLeastPaired(`${name} req/s >= 1.0x node:cluster rr on (a)`, 'a', a, 1);
  for (const [key, entry] of [['a', a], ['b', b]] as const) {
    add(`${name} worker CV <= 5% on (${key})`, pct(entry?.workerCv), entry?.workerCv === undefined ? undefined : entry.workerCv <= 0.05);
  }

  const open = steps.filter((step) => step.rate !== undefined);
  for (const step of open) {
    const mine = row(step.key, id);
    const base = row(step.key, 'cluster-rr');
    const measured =
      mine?.p99 !== undefined && base?.p99 !== undefined
        ? `p99 ${latency(mine, 'p99')} ms vs ${latency(base, 'p99')} ms (${ratio(mine.p99Ratio)}${roundsRatio(mine.pairedP99Ratio)}${control(step.key, 'p99Ratio')})${failed(mine)}${held(mine, base)}`
        : undefined;
    add(
      `${name} p99 <= node:cluster rr's on (${step.workload}) at ${step.ratePct}% of capacity, at most ${MAX_ERROR_SHARE * 100}% errors`,
      measured,
      mine?.p99 === undefined || base?.p99 === undefined ? undefined : mine.p99 <= base.p99 && !tooManyErrors(mine),
    );
  }

  if (open.length) {
    const modes = [...new Set([defaultMode, 'least', 'shared'])];
    lines.push(
      '',
      'Where the clusterd modes land on the open-loop steps: p99 over node:cluster rr\'s p99 at the same rate (below 1 is better).',
      '',
      `| step | node:cluster rr p99 ms | ${modes.map((mode) => `clusterd ${mode}${mode === defaultMode ? ' (default)' : ''}`).join(' | ')} |`,
      `|---|---:|${modes.map(() => '---:').join('|')}|`,
    );
    for (const step of open) {
      const base = row(step.key, 'cluster-rr');
      const cells = modes.map((mode) => {
        const entry = row(step.key, `clusterd-${mode}`);
        return entry?.p99Ratio === undefined ? 'n/a' : `${entry.p99Ratio.toFixed(2)} (${latency(entry, 'p99', 1)} ms)${failed(entry)}${held(entry)}`;
      });
      lines.push(`| (${step.workload}) at ${step.ratePct}% | ${base?.p99 === undefined ? 'n/a' : latency(base, 'p99')} | ${cells.join(' | ')} |`);
    }
  }
  lines.push('', 'One run on a shared 2-core machine: read these next to the noise note above, not as a verdict.');
  return `${lines.join('\n')}\n`;
}

/**
 * The median of the rounds' own ratios, next to the ratio of the medians the target is read on: the
 * rounds are interleaved, so each is a pair that ran minutes apart, and slow drifts of the machine
 * move both of a pair alike.
 */
function roundsRatio(value: number | undefined): string {
  return value === undefined ? '' : `; rounds' median ${value.toFixed(2)}x`;
}

/** More than MAX_ERROR_SHARE of the requests failed (median over rounds). */
function tooManyErrors(entry: Summary): boolean {
  return (entry.errorShare ?? 0) > MAX_ERROR_SHARE;
}

/** "; 3.6% of requests failed" past MAX_ERROR_SHARE: such a p99 does not meet a target. */
function failed(entry: Summary): string {
  return tooManyErrors(entry) ? `; ${pct(entry.errorShare)} of requests failed` : '';
}

/** A warning when the generator did not hold its rate in every round of these rows. */
function held(...rows: Array<Summary | undefined>): string {
  const short = rows.filter((entry) => entry && entry.heldRounds !== undefined && entry.heldRounds < entry.rounds);
  return short.length ? ` (rate not held in every round: ${short.map((entry) => entry?.label).join(', ')})` : '';
}
