import test from 'ava';
import { createDelayMonitor } from '../../src/loop/delay-monitor.js';
import { every, IDLE_TICK_MS, tickPeriod } from '../../src/loop/ticker.js';
import { burnCpu, keepAlive, observeFor } from './helpers.js';
import { waitFor } from '../helpers/cluster.js';

/** Polls `condition` every few ms until it holds. */
async function until(condition: () => boolean): Promise<void> {
  await waitFor(condition, { intervalMs: 5, what: 'the delay monitor' });
}

test.serial('a stall right after reset() is recorded at the next tick (monitorEventLoopDelay drops it)', async (t) => {
  const monitor = createDelayMonitor(10);
  monitor.enable();
  t.teardown(() => monitor.disable());
  await until(() => monitor.histogram.count >= 2);
  monitor.reset();
  burnCpu(200);
  await until(() => monitor.histogram.count >= 1);
  t.true(monitor.histogram.max >= 200e6, `max ${monitor.histogram.max / 1e6} ms`);
});

test.serial('settle() records an overdue stall at once, and nothing when no tick is due', async (t) => {
  const monitor = createDelayMonitor(10);
  monitor.settle(); // disabled: nothing to settle
  t.is(monitor.histogram.count, 0);
  monitor.enable();
  t.teardown(() => monitor.disable());
  monitor.settle(); // just enabled: the first tick is not due
  t.is(monitor.histogram.count, 0);
  burnCpu(200);
  monitor.settle(); // the same turn of the loop: the probe's own tick has not run
  // The stall and the ticks it swallowed (19 for exactly 200 ms; a loaded machine stretches the stall).
  t.true(monitor.histogram.count >= 20, `count ${monitor.histogram.count}`);
  t.true(monitor.histogram.max >= 200e6, `max ${monitor.histogram.max / 1e6} ms`);
  const settledAt = performance.now();
  monitor.reset();
  await until(() => monitor.histogram.count >= 1);
  // The overdue tick that ran next measured only from settle(): the stall is not counted twice. Its
  // delay is no longer than the time since settle() (not a fixed 150 ms: a loaded machine may hold
  // this process off the CPU before that tick), where one measured from before the stall would be
  // 200 ms longer. Slack: the histogram's 3 significant digits, and half a tick (recordStretched).
  const sinceSettleMs = performance.now() - settledAt;
  t.true(monitor.histogram.max <= (sinceSettleMs * 1.001 + 5) * 1e6, `max ${monitor.histogram.max / 1e6} ms, ${sinceSettleMs} ms since settle()`);
});

test.serial('ticks are recorded in ns with the resolution included, and stop once disabled', async (t) => {
  const monitor = createDelayMonitor(5);
  monitor.enable();
  monitor.enable(); // idempotent: still one timer
  await until(() => monitor.histogram.count >= 5);
  monitor.disable();
  const { count } = monitor.histogram;
  // An idle tick takes at least about the resolution (Node's ms clock may fire it up to ~1 ms early).
  t.true(monitor.histogram.min >= 3.5e6, `min ${monitor.histogram.min / 1e6} ms`);
  await observeFor(50); // ten resolutions of silence
  t.is(monitor.histogram.count, count);
  monitor.reset();
  t.is(monitor.histogram.count, 0);
});

test.serial('a stall weighs by its duration: one 200 ms stall among a second of ticks sets p99', async (t) => {
  const monitor = createDelayMonitor(10);
  monitor.enable();
  t.teardown(() => monitor.disable());
  await until(() => monitor.histogram.count >= 60);
  burnCpu(200);
  await until(() => monitor.histogram.max >= 200e6);
  // Counted once, the stall would be one tick in ~80 and leave p99 at ~10 ms; the ticks it
  // swallowed are recorded too (delays of 190, 180, ... 10 ms), as a request arriving then would wait.
  const { histogram } = monitor;
  t.true(histogram.percentile(99) >= 150e6, `p99 ${histogram.percentile(99) / 1e6} ms over ${histogram.count} values`);
  // How far the weighting reaches down depends on how long the stall really lasted on this box.
  t.true(histogram.percentile(50) < histogram.percentile(99), `p50 ${histogram.percentile(50) / 1e6} ms`);
});

test.serial('while the loop is idle the ticks stretch, and the probe still records what 10 ms ticks would: the resolution while idle, then a stall as long as it was', async (t) => {
  const monitor = createDelayMonitor(10);
  monitor.enable();
  t.teardown(() => monitor.disable());
  keepAlive(t);
  await until(() => tickPeriod() > 10);
  const { histogram } = monitor;
  // Counted from a tick on: a tick records the time since the tick before it, which for the first one
  // after a reset lies partly before the reset (a stretched tick earlier, or longer where this process
  // was held off the CPU then). So the histogram is emptied on a tick, right after the probe recorded
  // it (a subscriber of the same shared timer, called after the probe's), and counted from then.
  const tickAt = await new Promise<number>((resolve) => {
    const stop = every(
      10,
      (now) => {
        monitor.reset();
        stop();
        resolve(now);
      },
      { stretch: true },
    );
  });
  await observeFor(300);
  const observedMs = performance.now() - tickAt;
  // Idle time is recorded as ticks of exactly the resolution, about one per 10 ms (where 10 ms ticks
  // come a little late: 10.0-10.5 ms). A noisy machine may bring the short ticks back for a moment,
  // so this holds for most values, not all. (The histogram keeps 3 significant digits: 10 ms reads 9.99.)
  // At most one value per 10 ms of the time since that tick (over 300 ms: more where this process was
  // held off the CPU), and two more: the idle time carried from before that tick, a block's half tick.
  const most = Math.floor(observedMs / 10) + 2;
  t.true(histogram.count >= 10 && histogram.count <= most, `${histogram.count} values in ${observedMs.toFixed(0)} ms (at most ${most})`);
  t.true(histogram.min > 9.9e6 && histogram.percentile(50) < 10.01e6, `min ${histogram.min / 1e6}, p50 ${histogram.percentile(50) / 1e6} ms while idle`);
  await until(() => tickPeriod() > 10);
  monitor.reset();
  const before = performance.now();
  burnCpu(200);
  await until(() => histogram.count >= 20);
  // The stall is the loop's busy time since the last tick, with the ticks it swallowed: no more than
  // the time since the tick before the stall (at most one stretched tick earlier), half a tick added.
  const boundMs = performance.now() - before + IDLE_TICK_MS + 5;
  t.true(histogram.max >= 200e6 && histogram.max <= boundMs * 1e6, `max ${histogram.max / 1e6} ms, at most ${boundMs} ms`);
  t.true(histogram.percentile(99) >= 150e6, `p99 ${histogram.percentile(99) / 1e6} ms over ${histogram.count} values`);
  t.is(tickPeriod(), 10, 'the stall brought the short ticks back');
});
