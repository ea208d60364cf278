// The benchmark's pure bookkeeping around the open-loop workloads: flags, steps, the default mode read
// from the help text, the master's cost per connection.
import test from 'ava';
import { parseOptions, type BenchOptions } from '../../../scripts/bench/options.js';
import type { RunRecord } from '../../../scripts/bench/runner.js';
import { stepsFor, stepTitle } from '../../../scripts/bench/steps.js';
import { masterCost } from '../../../scripts/bench/summary.js';
import { parseBalanceHelp } from '../../../scripts/bench/systems.js';

const options = (argv: string[]) => parseOptions(argv) as BenchOptions;

test('the full run has every workload, --quick the closed-loop ones, --scaling a and b', (t) => {
  t.deepEqual(options([]).workloads, ['a', 'b', 'c', 'd', 'e']);
  t.deepEqual(options(['--quick']).workloads, ['a', 'b', 'c']);
  t.deepEqual(options(['--scaling']).workloads, ['a', 'b']);
  t.deepEqual(options(['--workloads', 'd,e']).workloads, ['d', 'e']);
});

test('open-loop flags and their defaults', (t) => {
  const defaults = options([]);
  t.deepEqual(defaults.dRates, [50, 70, 90]);
  t.is(defaults.pool, 64);
  t.is(defaults.maxInFlight, 2000);
  t.is(defaults.capacityD, undefined);
  const given = options(['--capacity-d', '1800', '--capacity-e', '60000', '--d-rates', '90,50,50', '--pool', '16', '--max-in-flight', '500']);
  t.is(given.capacityD, 1800);
  t.is(given.capacityE, 60000);
  t.deepEqual(given.dRates, [50, 90]);
  t.is(given.pool, 16);
  t.is(given.maxInFlight, 500);
});

const rejects = test.macro((t, argv: string[], mention: string) => {
  const error = t.throws(() => parseOptions(argv));
  t.true(error!.message.includes(mention), error!.message);
  t.false(error!.message.includes('\n'));
});
test('rejects an unknown workload', rejects, ['--workloads', 'a,f'], '`f`');
test('rejects d and e in a scaling run', rejects, ['--scaling', '--workloads', 'd'], 'with --scaling');
test('rejects a zero rate', rejects, ['--d-rates', '50,0'], '`0`');
test('rejects a capacity that is not a number', rejects, ['--capacity-e', 'fast'], '`--capacity-e`');
test('rejects an unbounded pool', rejects, ['--pool', '1000000'], 'at most 10000');
test('rejects a fractional connection bound', rejects, ['--max-in-flight', '2.5'], '`--max-in-flight`');

test('steps: one per closed-loop workload, one per rate of an open-loop one', (t) => {
  const steps = stepsFor(['a', 'd', 'e'], { capacities: { d: 2000, e: 60000 }, ratesPct: { d: [50, 90] } });
  t.deepEqual(steps, [
    { key: 'a', workload: 'a' },
    { key: 'd@50', workload: 'd', ratePct: 50, rate: 1000 },
    { key: 'd@90', workload: 'd', ratePct: 90, rate: 1800 },
    { key: 'e@50', workload: 'e', ratePct: 50, rate: 30000, workers: 2 },
  ]);
  t.regex(stepTitle(steps[2]!), /at 90% of capacity \(1800 req\/s\)$/);
});

test('steps: an open-loop workload without a capacity is left out', (t) => {
  t.deepEqual(stepsFor(['b', 'd'], { capacities: {}, ratesPct: {} }), [{ key: 'b', workload: 'b' }]);
});

test('the default balance mode is read from the help text', (t) => {
  const help = (balance: string) => `Options:\n  --instances  [string]\n  --balance  rr: ...; fair: ...  [string] ${balance}\n  --grace  [string] [default: "10s"]\n`;
  t.deepEqual(parseBalanceHelp(help('[choices: "rr", "least", "fair"] [default: "fair"]')), { modes: ['rr', 'least', 'fair'], defaultMode: 'fair' });
  t.deepEqual(parseBalanceHelp(help('[choices: "rr", "least"] [default: "rr"]')), { modes: ['rr', 'least'], defaultMode: 'rr' });
  // As clusterd prints it (a defaultDescription: no quotes).
  t.deepEqual(parseBalanceHelp(help('[choices: "fair", "rr", "least"] [default: fair]')), { modes: ['fair', 'rr', 'least'], defaultMode: 'fair' });
  // No default printed: rr, with a note; never the next option's default.
  const missing = parseBalanceHelp(help('[choices: "rr", "least"]'));
  t.is(missing.defaultMode, 'rr');
  t.regex(missing.note ?? '', /default/);
  t.is(parseBalanceHelp('no balance here').defaultMode, 'rr');
});

test("the master's cost: CPU microseconds per accepted connection and per served request", (t) => {
  const record = {
    round: 1,
    workload: 'b',
    system: 'cluster-rr',
    position: 1,
    ok: true,
    masterCpuS: 0.4,
    workers: [
      { pid: 1, requests: 3000, connections: 3000 },
      { pid: 2, requests: 2000, connections: 2000 },
    ],
  } satisfies RunRecord;
  t.deepEqual(masterCost(record), { perConnection: 80, perRequest: 80 });
  const keepAlive = { ...record, masterCpuS: 0.064, workers: [{ pid: 1, requests: 640_000, connections: 64 }] };
  t.deepEqual(masterCost(keepAlive), { perConnection: 1000, perRequest: 0.1 });
  // Written before masterCpuS was kept: the share of a core times the window.
  const { masterCpuS: _, ...older } = record;
  t.deepEqual(masterCost({ ...older, masterCpuPct: 10, windowS: 4 }), { perConnection: 80, perRequest: 80 });
  t.deepEqual(masterCost({ ...older, workers: [] }), {});
});
