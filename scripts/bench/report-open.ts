// Markdown for the open-loop steps ((d) at each rate, (e)): one table per step, tail latency first,
// and a plain statement of every measurement in which the generator did not hold its rate.
import { masterCpu, masterUs, num, pct } from './report.js';
import { tcpNote, type RunRecord } from './runner.js';
import { stepTitle, type Step } from './steps.js';
import type { LowerBound } from './load/open-loop-tally.js';
import { keyOf, type Summary } from './summary.js';

/** A latency median in ms, "≥" before it when requests that got no response decide it (a lower bound). */
export const latency = (row: Summary, name: LowerBound, digits = 2) => `${row.lowerBounds?.includes(name) ? '≥' : ''}${num(row[name], digits)}`;

const split = (shares: number[] | undefined) => (shares ? shares.map((share) => Math.round(share * 100)).join('/') : 'n/a');

/** One open-loop step's table. */
export function openStepMarkdown(step: Step, rows: Summary[], records: RunRecord[]): string {
  const blocking = rows.some((row) => row.blockedShare !== undefined);
  const lines = [
    `## ${stepTitle(step)}`,
    '',
    `| system | req/s | rate held | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | p99 vs node:cluster rr | errors | worker split % |${blocking ? ' stalled worker\'s share |' : ''} worker CV | master CPU | master us/conn | master us/req | rounds |`,
    `|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|${blocking ? '---:|' : ''}---:|---:|---:|---:|---:|`,
  ];
  const notes: string[] = [];
  for (const row of rows) {
    if (row.note) notes.push(`${row.label}: ${row.note}`);
    if (row.reconnects) {
      notes.push(
        `${row.label}: the server ended a median ${Math.round(row.reconnects)} keep-alive connections per round after a response (\`Connection: close\`); the generator closed each and opened a new one, as a client would, and the connect counts in the next request's latency.`,
      );
    }
    if (row.rounds === 0) {
      lines.push(`| ${row.label} | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |${blocking ? ' n/a |' : ''} n/a | n/a | n/a | n/a | 0 |`);
      continue;
    }
    const held = row.heldRounds === row.rounds ? 'yes' : `**no** (${row.heldRounds ?? 0} of ${row.rounds})`;
    lines.push(
      `| ${row.label} | ${Math.round(row.rps ?? 0)} | ${held} | ${latency(row, 'p50')} | ${latency(row, 'p90')} | ${latency(row, 'p99')} | ${latency(row, 'p999')} | ${latency(row, 'max', 1)} | ${row.lowerBounds?.includes('p99') ? '≥' : ''}${num(row.p99Ratio)} | ${num(row.errors, 0)} | ${split(row.split)} |${blocking ? ` ${pct(row.blockedShare)} |` : ''} ${pct(row.workerCv)} | ${masterCpu(row)} | ${masterUs(row, 'perConnection')} | ${masterUs(row, 'perRequest')} | ${row.rounds} |`,
    );
  }
  const measured = rows.filter((row) => row.rounds > 0);
  if (measured.length) {
    const range = (values: Array<number | undefined>, digits: number) => {
      const known = values.filter((value): value is number => value !== undefined);
      return known.length ? `${Math.min(...known).toFixed(digits)}-${Math.max(...known).toFixed(digits)}` : 'n/a';
    };
    const priorities = [...new Set(records.filter((record) => keyOf(record) === step.key && record.load?.open?.priority).map((record) => record.load?.open?.priority))];
    lines.push(
      '',
      `Generator: send lag p99 ${range(measured.map((row) => row.sendLagP99), 2)} ms, CPU ${range(measured.map((row) => row.loadgenCpuPct), 0)}% of a core (medians per system)${priorities.length ? `; ran at ${priorities.join(' / ')}` : ''}.`,
    );
  }
  for (const record of records) {
    const open = record.load?.open;
    if (keyOf(record) !== step.key || !record.ok || !open || open.heldRate) continue;
    const label = rows.find((row) => row.system === record.system)?.label ?? record.system;
    notes.push(`**rate not held**: ${label}, round ${record.round}: ${open.notHeld}. Its latencies include the generator's own delay.`);
  }
  // A connection whose SYN went unanswered waits out TCP's initial 1 s retransmit timeout: a p99 near
  // 1 s with a p50 near 1 ms. Said per measurement, so such a tail is not read as the system's own.
  for (const record of records) {
    const note = tcpNote(record.tcp);
    if (keyOf(record) !== step.key || !record.ok || note === '') continue;
    const label = rows.find((row) => row.system === record.system)?.label ?? record.system;
    notes.push(`${label}, round ${record.round}: the machine had${note.slice(1)} during the measurement; each delays a new connection by 1 s or more.`);
  }
  if (notes.length) lines.push('', ...notes.map((note) => `- ${note}`));
  return `${lines.join('\n')}\n`;
}

/** What the open-loop columns mean, printed under the tables when open-loop steps ran. */
export function openLegend({ pool, maxInFlight }: { pool: number; maxInFlight: number }): string {
  return `Open-loop steps ((d), (e)): a Node child process sends requests at a constant rate; request i is due at
start + i / rate, and its latency runs from that due time, so a generator or a system that falls behind is
charged for the whole delay (no coordinated omission). It runs at a raised CPU priority, ahead of the
system under test, as a client machine of its own would. New connection per request: at most ${maxInFlight}
connections at once; keep-alive: a pool of ${pool} connections opened up front, the one idle longest takes
the next request. A request that waits for a connection waits in its latency. req/s: responses completed
per second of the schedule. rate held: the generator's own pacing lateness stayed under 5 ms at p99 and it
sent at least 99% of the rate, in every round (else the rounds that held are counted). p99 vs node:cluster
rr: the p99 over node:cluster rr's at the same rate. A request that got no response (timed out after
5 s, or its connection failed) counts in the latencies at its time so far, at least 5 s; a figure such
requests decide is a lower bound and is marked "≥". worker split: each worker's share of the requests,
largest first. stalled worker's share ((e)): the share of the worker that blocks its loop.
`;
}
