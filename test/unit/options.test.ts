import test from 'ava';
import { availableParallelism } from 'node:os';
import { UsageError } from '../../src/errors.js';
import { parseChoice, parseDuration, parseInstances, parseName, parseSize } from '../../src/options.js';

const duration = test.macro((t, input: string, expected: number) => {
  t.is(parseDuration('grace', input), expected);
});
for (const [input, expected] of [['250', 250], ['250ms', 250], ['10s', 10_000], ['1.5s', 1500], ['2m', 120_000], ['1h', 3_600_000], ['0', 0]] as const) {
  test(`duration ${input}`, duration, input, expected);
}

const size = test.macro((t, input: string, expected: number) => {
  t.is(parseSize('max-memory', input), expected);
});
for (const [input, expected] of [['512M', 512 * 1024 ** 2], ['1G', 1024 ** 3], ['300MB', 300 * 1024 ** 2], ['1.5GiB', 1.5 * 1024 ** 3], ['4096', 4096], ['64k', 65536]] as const) {
  test(`size ${input}`, size, input, expected);
}

const rejects = test.macro((t, parse: () => unknown, mention: string) => {
  const error = t.throws(parse, { instanceOf: UsageError });
  t.true(error!.message.includes(mention), error!.message);
  t.false(error!.message.includes('\n'));
});
test('duration rejects words', rejects, () => parseDuration('grace', 'soon'), '`--grace`');
test('duration rejects negatives', rejects, () => parseDuration('grace', '-1s'), '`-1s`');
test('size rejects unknown units', rejects, () => parseSize('max-memory', '12Q'), '`12Q`');
test('instances rejects 0', rejects, () => parseInstances('0'), '`0`');
test('instances rejects words', rejects, () => parseInstances('abc'), '`abc`');
test('instances rejects fractions', rejects, () => parseInstances('1.5'), '`1.5`');
test('choice names the choices', rejects, () => parseChoice('balance', 'random', ['rr', 'shared']), 'rr, shared');
test('names reject path separators', rejects, () => parseName('../etc'), '`../etc`');

test('instances accepts max and integers', (t) => {
  t.is(parseInstances('max'), availableParallelism());
  t.is(parseInstances('3'), 3);
});
