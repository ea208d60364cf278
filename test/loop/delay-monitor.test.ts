import test from 'ava';
import { createDelayMonitor } from '../../src/loop/delay-monitor.js';
import { burnCpu } from './helpers.js';

/** Polls `condition` every few ms until it holds, failing after `deadlineMs`. */
async function until(condition: () => boolean, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`condition still false after ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
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

test.serial('ticks are recorded in ns with the resolution included, and stop once disabled', async (t) => {
  const monitor = createDelayMonitor(5);
  monitor.enable();
  monitor.enable(); // idempotent: still one timer
  await until(() => monitor.histogram.count >= 5);
  monitor.disable();
  const { count } = monitor.histogram;
  // An idle tick takes at least about the resolution (Node's ms clock may fire it up to ~1 ms early).
  t.true(monitor.histogram.min >= 3.5e6, `min ${monitor.histogram.min / 1e6} ms`);
  await new Promise((resolve) => setTimeout(resolve, 50)); // ten resolutions of observation
  t.is(monitor.histogram.count, count);
  monitor.reset();
  t.is(monitor.histogram.count, 0);
});
