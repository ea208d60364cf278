import test from 'ava';
import { parseScaleSpec, parseWorkerId } from '../src/cli/control-args.js';
import { UsageError } from '../src/errors.js';
import { usableCpus } from '../src/system/cpus.js';
import {
  MAX_INSTANCES,
  MAX_TIMER_MS,
  formatMs,
  parseChoice,
  parseDuration,
  parseInstances,
  parseInteger,
  nameFromEntry,
  parseName,
  parseNodeArgs,
  parseSignal,
  parseSize,
  type DurationRange,
} from '../src/options.js';

const duration = test.macro({
  exec(t, input: string, range: DurationRange, expected: number) {
    t.is(parseDuration('grace', input, range), expected);
  },
  title: (_title, input: string, range: DurationRange) => `duration ${input} within ${JSON.stringify(range)}`,
});
const durations: [string, DurationRange, number][] = [
  // A bare number is seconds, as PM2's and systemd's are.
  ['10', {}, 10_000],
  ['0.25', {}, 250],
  ['250ms', {}, 250],
  ['10s', {}, 10_000],
  ['1.5s', {}, 1500],
  ['2m', {}, 120_000],
  ['1h', {}, 3_600_000],
  ['1d', {}, 86_400_000],
  ['0', { min: 0 }, 0],
  ['0', { min: 10, off: true }, 0],
  ['10ms', { min: 10, off: true }, 10],
  // The largest delay Node's timers take, whatever the unit.
  [`${MAX_TIMER_MS}ms`, {}, MAX_TIMER_MS],
  ['596h', {}, 596 * 3_600_000],
  ['24d', {}, 24 * 86_400_000],
  // The limit is not a whole number of days: past 24d, within it.
  ['24.5d', {}, 24.5 * 86_400_000],
  ['1m', { min: 50, max: 60_000 }, 60_000],
  // Within the range as given, then rounded to the millisecond; a decimal's bound is its own (2147483.647 s
  // times 1000 is not exactly MAX_TIMER_MS in binary).
  ['1.5ms', {}, 2],
  ['0.0105', { min: 10, off: true }, 11],
  ['2147483.647', {}, MAX_TIMER_MS],
  ['0.01', { min: 10, off: true }, 10],
];
for (const [input, range, expected] of durations) test(duration, input, range, expected);

const size = test.macro({
  exec(t, input: string, expected: number) {
    t.is(parseSize('max-memory', input), expected);
  },
  title: (_title, input: string) => `size ${input}`,
});
for (const [input, expected] of [
  ['512M', 512 * 1024 ** 2],
  ['1G', 1024 ** 3],
  ['300MB', 300 * 1024 ** 2],
  ['1.5GiB', 1.5 * 1024 ** 3],
  ['16M', 16 * 1024 ** 2],
  ['16777216', 16 * 1024 ** 2],
  ['1T', 1024 ** 4],
] as const) {
  test(size, input, expected);
}

const integer = test.macro({
  exec(t, parse: () => number, expected: number) {
    t.is(parse(), expected);
  },
  title: (title) => `accepts ${title}`,
});
test('-i max (one per usable CPU, capped)', integer, () => parseInstances('max'), Math.min(usableCpus().cpus, MAX_INSTANCES));
test('-i 3', integer, () => parseInstances('3'), 3);
test(`-i ${MAX_INSTANCES}`, integer, () => parseInstances(String(MAX_INSTANCES)), MAX_INSTANCES);
test('--lines 0', integer, () => parseInteger('lines', '0', { min: 0, max: 1000 }), 0);
test('--lines 1000', integer, () => parseInteger('lines', '1000', { min: 0, max: 1000 }), 1000);
for (const signal of ['SIGTERM', 'SIGINT', 'SIGUSR2', 'SIGHUP', 'SIGQUIT'] as const) {
  test(`--kill-signal ${signal}`, (t) => t.is(parseSignal('kill-signal', signal), signal));
}
test(`WORKER_ID ${MAX_INSTANCES}`, integer, () => parseWorkerId(String(MAX_INSTANCES)), MAX_INSTANCES);

/** Refused with one line that names the flag, the allowed range (when given) and the value. */
const rejects = test.macro({
  exec(t, parse: () => unknown, mentions: string[]) {
    const error = t.throws(parse, { instanceOf: UsageError });
    for (const words of mentions) t.true(error!.message.includes(words), `${JSON.stringify(words)} not in: ${error!.message}`);
    t.false(error!.message.includes('\n'));
  },
  title: (title) => `refuses ${title}`,
});
const RANGE = `from 1ms to ${MAX_TIMER_MS} ms (about 24.8 days)`;
test('duration words', rejects, () => parseDuration('grace', 'soon'), ['`--grace`', '`soon`']);
test('negative durations', rejects, () => parseDuration('grace', '-1s'), ['`-1s`']);
// Spaces and empty values would read as nothing in backticks: quoted as JSON, so they show.
test('a blank duration, quoted so that it shows', rejects, () => parseDuration('grace', ' '), ['`--grace`', 'got " "']);
test('a duration with a space before it, quoted so that it shows', rejects, () => parseDuration('grace', ' x'), ['got " x"']);
test('a blank -i, quoted so that it shows', rejects, () => parseInstances('\t'), ['got "\\t"']);
// Node would run a longer timer after 1 ms: `--grace 600h` must not mean no grace at all.
test('durations past the timer limit', rejects, () => parseDuration('grace', '600h', { min: 0 }), ['`--grace`', 'from 0ms to 2147483647 ms (about 24.8 days)', '`600h`']);
test('--listen-timeout 600h', rejects, () => parseDuration('listen-timeout', '600h'), ['`--listen-timeout`', RANGE, '`600h`']);
test('one past the timer limit', rejects, () => parseDuration('listen-timeout', String(MAX_TIMER_MS + 1)), [RANGE]);
test('--listen-timeout 0', rejects, () => parseDuration('listen-timeout', '0'), ['`--listen-timeout`', RANGE, '`0`']);
test('durations that round to 0', rejects, () => parseDuration('listen-timeout', '0.4ms'), ['`0.4ms`']);
// The range is judged before rounding, as the config file's JSON Schema judges numbers: a value that rounds into it is not in it.
test('a duration that rounds up to the least one', rejects, () => parseDuration('listen-timeout', '0.5ms'), ['`0.5ms`', 'under 1 ms']);
test('a duration that rounds up to the minimum', rejects, () => parseDuration('stats-interval', '0.0095', { min: 10, off: true }), ['from 10ms', '`0.0095`']);
test('a duration that rounds down to the timer limit', rejects, () => parseDuration('grace', '2147483.6474', { min: 0 }), ['from 0ms to 2147483647 ms', '`2147483.6474`']);
test('a sliver that rounds up to 1 ms where 0 is in range', rejects, () => parseDuration('grace', '0.6ms', { min: 0 }), ['`0.6ms`', 'under 1 ms']);
// Only a typed 0 turns a check off: a sliver that rounds to 0 is no way to ask for that.
test('a sliver that rounds to 0 where 0 means off', rejects, () => parseDuration('stats-interval', '0.0001', { min: 10, off: true }), ['`0.0001`', 'under 1 ms']);
test('a sliver that rounds to 0 where 0 is in range', rejects, () => parseDuration('grace', '0.0001ms', { min: 0 }), ['`0.0001ms`', 'under 1 ms']);
test('--node-arg that is empty', rejects, () => parseNodeArgs(['']), ['`--node-arg`', 'a node flag']);
test('--node-arg that is not a flag', rejects, () => parseNodeArgs(['app.js']), ['`app.js`']);
test('--no-node-arg', rejects, () => parseNodeArgs(false), ['`false`']);
test('--node-arg=--, which would end node\'s options', rejects, () => parseNodeArgs(['--']), ['`--`']);

test('node flags, and a value after a flag that takes one', (t) => {
  t.deepEqual(parseNodeArgs(undefined), []);
  t.deepEqual(parseNodeArgs(['--max-old-space-size=512', '--require', './setup.js', '-r', 'x']), ['--max-old-space-size=512', '--require', './setup.js', '-r', 'x']);
  // After a flag with its value attached, a word is not a value.
  t.throws(() => parseNodeArgs(['--max-old-space-size=512', 'app.js']), { instanceOf: UsageError });
});

test('a cluster name from the entry file name, made to fit', (t) => {
  t.is(nameFromEntry('api'), 'api');
  t.is(nameFromEntry('my app'), 'my-app');
  t.is(nameFromEntry('.hidden'), 'hidden');
  t.is(nameFromEntry('x'.repeat(80)), 'x'.repeat(64));
  t.is(nameFromEntry('日本'), null);
  for (const name of ['api', 'my-app', 'hidden']) t.is(parseName(name), name);
});
test('--stats-interval under its minimum', rejects, () => parseDuration('stats-interval', '5ms', { min: 10, off: true }), [
  '0 (off) or a duration from 10ms to 2147483647 ms (about 24.8 days)',
  '`5ms`',
]);
test('--watchdog 600h', rejects, () => parseDuration('watchdog', '600h', { min: 10, off: true }), ['`--watchdog`', '0 (off)', '`600h`']);
test('--interval past its maximum', rejects, () => parseDuration('interval', '2m', { min: 50, max: 60_000 }), ['from 50ms to 1m', '`2m`']);
test('--kill-signal TERM (not a signal name)', rejects, () => parseSignal('kill-signal', 'TERM'), ['`--kill-signal`', 'a signal name such as SIGTERM', '`TERM`']);
test('--kill-signal sigterm (Node names are upper case)', rejects, () => parseSignal('kill-signal', 'sigterm'), ['`sigterm`']);
test('--kill-signal 15 (a number)', rejects, () => parseSignal('kill-signal', '15'), ['`15`']);
test('--kill-signal SIGFOO', rejects, () => parseSignal('kill-signal', 'SIGFOO'), ['`SIGFOO`']);
test('--kill-signal SIGKILL', rejects, () => parseSignal('kill-signal', 'SIGKILL'), ['`--kill-signal`', '`SIGKILL`', 'cannot be handled']);
test('--kill-signal SIGSTOP', rejects, () => parseSignal('kill-signal', 'SIGSTOP'), ['`SIGSTOP`', 'cannot be handled']);
test('--kill-signal SIGUSR1 (the inspector\'s)', rejects, () => parseSignal('kill-signal', 'SIGUSR1'), ['`SIGUSR1`', 'inspector']);
test('--kill-signal toString (not an own signal)', rejects, () => parseSignal('kill-signal', 'toString'), ['`toString`']);
test('sizes of unknown units', rejects, () => parseSize('max-memory', '12Q'), ['`12Q`']);
test('sizes no Node.js process fits in', rejects, () => parseSize('max-memory', '64k'), ['`--max-memory`', 'from 16M to 1T', '`64k`']);
test('sizes past 1T', rejects, () => parseSize('max-memory', '2T'), ['from 16M to 1T', '`2T`']);
test('-i 0', rejects, () => parseInstances('0'), ['`--instances`', `from 1 to ${MAX_INSTANCES}`, '`0`']);
test('-i 100000', rejects, () => parseInstances('100000'), ['`--instances`', `from 1 to ${MAX_INSTANCES}`, '`100000`']);
test('-i words', rejects, () => parseInstances('abc'), ['`abc`']);
test('-i fractions', rejects, () => parseInstances('1.5'), ['`1.5`']);
test('--lines past what the master keeps', rejects, () => parseInteger('lines', '1001', { min: 0, max: 1000 }), ['`--lines`', 'from 0 to 1000', '`1001`']);
test('--lines in exponent notation', rejects, () => parseInteger('lines', '1e3', { min: 0, max: 1000 }), ['`1e3`']);
test('--parallel 0', rejects, () => parseInteger('parallel', '0', { min: 1, max: MAX_INSTANCES }), ['`--parallel`', `from 1 to ${MAX_INSTANCES}`]);
test('worker ids past the cap', rejects, () => parseWorkerId('99999999999999999999'), ['WORKER_ID', `from 1 to ${MAX_INSTANCES}`]);
test('scale past the cap', rejects, () => parseScaleSpec('+100000'), [`with K at most ${MAX_INSTANCES}`, '`+100000`']);
test('scale 0', rejects, () => parseScaleSpec('0'), ['cannot scale to 0 workers']);
test('scale words', rejects, () => parseScaleSpec('lots'), ['`lots`']);
test('choices, naming them', rejects, () => parseChoice('balance', 'random', ['rr', 'shared']), ['rr, shared']);
test('names with path separators', rejects, () => parseName('../etc'), ['`../etc`']);

test('scale specs pass through', (t) => {
  t.deepEqual(['4', '+1', '-2', ` ${MAX_INSTANCES} `].map(parseScaleSpec), ['4', '+1', '-2', String(MAX_INSTANCES)]);
});

test('worker ids, like scale counts, are read with spaces around them dropped', (t) => {
  t.deepEqual([' 1', '2 ', ` ${MAX_INSTANCES} `].map(parseWorkerId), [1, 2, MAX_INSTANCES]);
});

test('bounds read as people write them', (t) => {
  t.deepEqual([10, 1000, 60_000, 3_600_000, 1500, MAX_TIMER_MS].map(formatMs), ['10ms', '1s', '1m', '1h', '1500ms', `${MAX_TIMER_MS} ms (about 24.8 days)`]);
});
