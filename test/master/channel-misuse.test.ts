// PerMinute: the one limit on how often a worker's channel misuse and listening changes are logged.
import test from 'ava';
import { PerMinute } from '../../src/master/channel-misuse.js';

test('PerMinute(1) logs the first at once, then at most once a minute, counting every one', (t) => {
  let now = 1_000_000;
  const limit = new PerMinute(1, () => now);
  t.true(limit.count());
  now += 59_999;
  t.false(limit.count());
  t.false(limit.count());
  now += 1;
  t.true(limit.count());
  t.is(limit.total, 4);
});

test('PerMinute(n) logs n a minute, counts the rest unlogged, and tells their count when the next minute begins', (t) => {
  let now = 1_000_000;
  const limit = new PerMinute(3, () => now);
  const ended: number[] = [];
  const tell = (unlogged: number): void => void ended.push(unlogged);
  t.deepEqual([1, 2, 3, 4, 5].map(() => limit.count(tell)), [true, true, true, false, false]);
  t.is(limit.unlogged, 2);
  now += 60_000;
  t.true(limit.count(tell));
  t.deepEqual(ended, [2]);
  t.is(limit.unlogged, 0);
  // A minute with none unlogged tells nothing.
  now += 60_000;
  t.true(limit.count(tell));
  t.deepEqual(ended, [2]);
  t.is(limit.total, 7);
});
