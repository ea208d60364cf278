// The worker's shared timer (src/loop/ticker.ts): the delay probe and the heartbeat ride one timer.
// Serial: the tests share this process's one ticker.
import test from 'ava';
import { execa } from 'execa';
import { every, IDLE_TICK_MS, tickPeriod } from '../../src/loop/ticker.js';
import { burnCpu, keepAlive } from './helpers.js';
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
  keepAlive(t);
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
  keepAlive(t);
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

test.serial('while the loop is idle a stretching subscriber lets the ticks stretch to the others\' period, and is called on each; the first busy tick brings its own period back', async (t) => {
  // Each call with the tick period it came on (a noisy machine may bring the short ticks back for a while).
  const probe: Array<[now: number, tickMs: number]> = [];
  const beats: number[] = [];
  const stopProbe = every(10, (now) => probe.push([now, tickPeriod()]), { stretch: true });
  const stopBeats = every(25, (now) => beats.push(now));
  t.teardown(stopProbe);
  t.teardown(stopBeats);
  keepAlive(t);
  t.is(tickPeriod(), 10, 'the short period first');
  await waitFor(() => tickPeriod() === 25, { intervalMs: 5, what: 'the ticks to stretch to the heartbeat\'s period' });
  const stretched = () => probe.filter(([, tickMs]) => tickMs === 25);
  await waitFor(() => stretched().length >= 4, { intervalMs: 5, what: 'four stretched ticks' });
  // Every stretched tick calls both: one wake-up each 25 ms, the beats never later than asked.
  for (const [now] of stretched()) t.true(beats.includes(now), `a stretched probe call at ${now} without a beat`);
  for (let i = 1; i < probe.length; i++) {
    const [[before, tickBefore], [now, tickMs]] = [probe[i - 1]!, probe[i]!];
    if (tickBefore === 25 && tickMs === 25) t.true(now - before >= 20, `${now - before} ms between stretched ticks`);
  }

  // Busy: 3 ms of work every 5 ms. The next tick sees it and the 10 ms ticks come back.
  const busy = setInterval(() => burnCpu(3), 5);
  t.teardown(() => clearInterval(busy));
  await waitFor(() => tickPeriod() === 10, { intervalMs: 5, what: 'the short period back' });
  const busyFrom = probe.length;
  await waitFor(() => probe.length >= busyFrom + 10, { intervalMs: 5, what: 'ten busy ticks' });
  t.is(tickPeriod(), 10, 'still short while busy');
  clearInterval(busy);

  stopBeats();
  await waitFor(() => tickPeriod() === IDLE_TICK_MS, { intervalMs: 5, what: `the ticks to stretch to ${IDLE_TICK_MS} ms with the probe alone` });
  stopProbe();
  t.is(tickPeriod(), 0);
});

test.serial('a stretching subscriber is never called more often than its period, even on the shorter ticks of another', async (t) => {
  const probe: number[] = [];
  const beats: number[] = [];
  const stopProbe = every(10, (now) => probe.push(now), { stretch: true });
  const stopBeats = every(5, (now) => beats.push(now));
  t.teardown(stopProbe);
  t.teardown(stopBeats);
  keepAlive(t);
  // Idle long enough for the ticks to count as stretched (5 quiet ticks), then some more.
  await waitFor(() => beats.length >= 40, { intervalMs: 20, what: '40 ticks of 5 ms' });
  t.is(tickPeriod(), 5);
  for (let i = 1; i < probe.length; i++) t.true(probe[i]! - probe[i - 1]! >= 7.5, `${probe[i]! - probe[i - 1]!} ms between calls of a 10 ms subscriber`);
});

test.serial('each call is told how late its tick came, and the loop\'s busy time', async (t) => {
  const ticks: Array<{ now: number; lateMs: number; activeMs: number }> = [];
  const stop = every(10, (now, tick) => ticks.push({ now, ...tick }));
  t.teardown(stop);
  keepAlive(t);
  // The stall starts right after an ordinary tick (less than 150 ms late): a loaded machine may hold
  // this process off the CPU now and then, which makes a tick late too. A lateness that did not come
  // from the time between ticks would leave every tick late, and this waiting.
  await waitFor(() => ticks.length >= 3 && ticks.at(-1)!.lateMs < 150, { intervalMs: 5, what: 'three ticks, the last one less than 150 ms late' });
  const before = ticks.length;
  burnCpu(200);
  await waitFor(() => ticks.length > before, { intervalMs: 5, what: 'the tick after the stall' });
  const [previous, late] = [ticks[before - 1]!, ticks[before]!];
  t.true(late.lateMs >= 150, `the tick after a 200 ms stall came ${late.lateMs} ms late`);
  t.true(late.activeMs - previous.activeMs >= 190, `${late.activeMs - previous.activeMs} ms busy between them`);
  t.true(previous.lateMs < 150, `an ordinary tick ${previous.lateMs} ms late`);
});

test('the timer never keeps a process alive', async (t) => {
  const ticker = new URL('../../dist/loop/ticker.js', import.meta.url).href;
  const script = `import { every } from ${JSON.stringify(ticker)}; every(10, () => {}); every(25, () => {});`;
  const result = await execa(process.execPath, ['--input-type=module', '-e', script], { timeout: 10_000, reject: false });
  t.is(result.exitCode, 0, `${result.stderr} (timed out: ${result.timedOut})`);
  t.false(result.timedOut);
});
