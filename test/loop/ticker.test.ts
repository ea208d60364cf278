// The worker's shared timer (src/loop/ticker.ts): the delay probe and the heartbeat ride one timer.
// Serial: the tests share this process's one ticker.
import test from 'ava';
import { execa } from 'execa';
import { every, tickPeriod } from '../../src/loop/ticker.js';
import { waitFor } from '../helpers/cluster.js';

test.serial('subscribers of two periods share the ticks of the shorter; the longer is called no sooner than its period less half a tick', async (t) => {
  const fast: number[] = [];
  const slow: number[] = [];
  const stopFast = every(10, (now) => fast.push(now));
  const stopSlow = every(25, (now) => slow.push(now));
  t.teardown(() => {
    stopFast();
    stopSlow();
  });
  t.is(tickPeriod(), 10);
  const keepAlive = setTimeout(() => {}, 60_000); // the ticker's timer is unref'd
  t.teardown(() => clearTimeout(keepAlive));
  await waitFor(() => slow.length >= 6, { intervalMs: 5, what: 'six calls every 25 ms' });
  // One wake-up for both: each slow call came with a fast one, at the same tick.
  for (const now of slow) t.true(fast.includes(now), `a slow call at ${now} without a fast one`);
  for (let i = 1; i < slow.length; i++) t.true(slow[i]! - slow[i - 1]! >= 20, `${slow[i]! - slow[i - 1]!} ms between calls`);
  stopFast();
  t.is(tickPeriod(), 25, 'the timer follows the shortest period left');
  stopFast(); // twice: a no-op
  t.is(tickPeriod(), 25);
  stopSlow();
  t.is(tickPeriod(), 0, 'no timer once nothing is subscribed');
});

test.serial('the first call comes one period after subscribing, and a stopped subscriber is not called again', async (t) => {
  const calls: number[] = [];
  const start = performance.now();
  const stop = every(20, (now) => calls.push(now));
  const keepAlive = setTimeout(() => {}, 60_000);
  t.teardown(() => clearTimeout(keepAlive));
  await waitFor(() => calls.length >= 1, { intervalMs: 5, what: 'a call' });
  t.true(calls[0]! - start >= 10, `${calls[0]! - start} ms`);
  stop();
  const count = calls.length;
  // A tick of another subscriber's, after the stop: nothing more for the stopped one.
  const other: number[] = [];
  const stopOther = every(5, (now) => other.push(now));
  t.teardown(stopOther);
  await waitFor(() => other.length >= 10, { intervalMs: 5, what: 'ten ticks' });
  t.is(calls.length, count);
});

test('the timer never keeps a process alive', async (t) => {
  const ticker = new URL('../../dist/loop/ticker.js', import.meta.url).href;
  const script = `import { every } from ${JSON.stringify(ticker)}; every(10, () => {}); every(25, () => {});`;
  const result = await execa(process.execPath, ['--input-type=module', '-e', script], { timeout: 10_000, reject: false });
  t.is(result.exitCode, 0, `${result.stderr} (timed out: ${result.timedOut})`);
  t.false(result.timedOut);
});
