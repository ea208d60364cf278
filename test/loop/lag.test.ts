import test from 'ava';
import { createHistogram } from 'node:perf_hooks';
import { summarizeLag, type HistogramReading } from '../../src/loop/lag.js';
import type { LagSummary } from '../../src/loop/types.js';

const MS = 1e6;

/** A histogram stand-in whose percentiles come from a table: [percentile, ns]. */
function reading(count: number, mean: number, max: number, percentiles: Record<number, number>): HistogramReading {
  return { count, mean, max, percentile: (p) => percentiles[p] ?? Number.NaN };
}

const cases: Array<[string, HistogramReading, number, LagSummary]> = [
  ['an empty histogram is all zeros (Node reports mean NaN and junk percentiles)',
    reading(0, Number.NaN, 0, { 50: 511, 90: 511, 99: 511 }), 10, { mean: 0, p50: 0, p90: 0, p99: 0, max: 0 }],
  ['an idle loop at 10 ms resolution is about 0',
    reading(20, 10.1 * MS, 10.3 * MS, { 50: 10.1 * MS, 90: 10.2 * MS, 99: 10.3 * MS }), 10,
    { mean: 0.1, p50: 0.1, p90: 0.2, p99: 0.3, max: 0.3 }],
  ['ticks that came early (libuv keeps whole ms) clamp at 0',
    reading(5, 9.9 * MS, 10 * MS, { 50: 9.7 * MS, 90: 9.9 * MS, 99: 10 * MS }), 10, { mean: 0, p50: 0, p90: 0, p99: 0, max: 0 }],
  ['one 200 ms stall among idle ticks shows in p99 and max',
    reading(11, 28.2 * MS, 210 * MS, { 50: 10 * MS, 90: 10.5 * MS, 99: 210 * MS }), 10,
    { mean: 18.2, p50: 0, p90: 0.5, p99: 200, max: 200 }],
  ['the resolution subtracted is the one given',
    reading(3, 21 * MS, 21 * MS, { 50: 21 * MS, 90: 21 * MS, 99: 21 * MS }), 20, { mean: 1, p50: 1, p90: 1, p99: 1, max: 1 }],
  ['values are rounded to the microsecond',
    reading(1, 10.0001234 * MS, 10.0004567 * MS, { 50: 10.0001234 * MS, 90: 10.0001234 * MS, 99: 10.0004567 * MS }), 10,
    { mean: 0, p50: 0, p90: 0, p99: 0, max: 0 }],
];

for (const [title, histogram, resolutionMs, expected] of cases) {
  test(`summarizeLag: ${title}`, (t) => {
    const summary = summarizeLag(histogram, resolutionMs);
    for (const key of Object.keys(expected) as Array<keyof LagSummary>) {
      t.true(Math.abs(summary[key] - expected[key]) < 1e-9, `${key}: ${summary[key]} vs ${expected[key]}`);
    }
  });
}

test('summarizeLag reads a real node:perf_hooks histogram (ns in, ms out)', (t) => {
  const histogram = createHistogram();
  for (let i = 0; i < 98; i++) histogram.record(10 * MS + 500_000); // 0.5 ms late
  histogram.record(60 * MS);
  histogram.record(210 * MS);
  const lag = summarizeLag(histogram, 10);
  // The HDR histogram keeps 3 significant digits: compare within 0.5%.
  const near = (actual: number, expected: number) => t.true(Math.abs(actual - expected) <= expected * 0.005 + 0.01, `${actual} vs ${expected}`);
  near(lag.p50, 0.5);
  near(lag.p90, 0.5);
  near(lag.p99, 50);
  near(lag.max, 200);
  near(lag.mean, (98 * 0.5 + 50 + 200) / 100);
});
