// The sampler against the real event loop of this test process. Serial: the tests share the loop they measure.
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { countResources, createSampler, type SamplerOptions } from '../../src/loop/sampler.js';
import { uvMetricsReader } from '../../src/loop/uv-metrics.js';
import type { LoopSample } from '../../src/loop/types.js';
import { burnCpu, observeFor, startQueue, type SampleQueue } from './helpers.js';

const hasUvMetrics = 'uvMetricsInfo' in performance.nodeTiming;

const stall = test.macro({
  async exec(t: ExecutionContext, _site: string, schedule: (fn: () => void) => void) {
    const queue = startQueue(100);
    t.teardown(() => queue.sampler.stop());
    await queue.next();
    schedule(() => burnCpu(200));
    // The sample that holds the stall: the next one, unless this process was itself held up past the
    // sampler's next tick before the stall ran (a loaded machine: an 11 ms sample came first once).
    const candidates = [await queue.next()];
    while (candidates.at(-1)!.elu * candidates.at(-1)!.intervalMs < 150 && candidates.length < 3) candidates.push(await queue.next());
    if (candidates.length > 1) t.log(`before it: ${candidates.slice(0, -1).map((s) => `${s.intervalMs.toFixed(1)} ms, elu ${s.elu.toFixed(3)}`).join(' | ')}`);
    const sample = candidates.at(-1)!;
    t.log(`lag ${JSON.stringify(sample.lag)} elu ${sample.elu.toFixed(3)} cpu ${sample.cpu.toFixed(1)}% over ${sample.intervalMs.toFixed(1)} ms`);
    t.true(sample.intervalMs >= 200, 'the interval stretches over the stall');
    t.true(sample.lag.max >= 150, `max ${sample.lag.max}`);
    t.true(sample.lag.p99 >= 150, `p99 ${sample.lag.p99}`);
    // ELU counts the stall: at least its 200 ms busy in this sample (a ratio, elu > 0.8, also needed the
    // short idle waits around it to end on time, which a loaded machine does not promise).
    t.true(sample.elu * sample.intervalMs >= 195, `elu ${sample.elu} over ${sample.intervalMs} ms`);
    // burnCpu burnt at least 200 ms of CPU inside this interval.
    t.true((sample.cpu * sample.intervalMs) / 100 >= 199, `cpu ${sample.cpu}% of ${sample.intervalMs} ms`);
  },
  title: (_providedTitle, site) => `a 200 ms stall in ${site} shows as lag >= 150 ms and 200 ms of ELU's busy time in the next sample`,
});

test.serial(stall, 'setImmediate (check phase)', (fn) => setImmediate(fn));
test.serial(stall, 'setTimeout (timers phase, before the sampler tick)', (fn) => setTimeout(fn, 20));

/** The three samples after a 200 ms stall that starts `offset` ms after a sample was taken. */
async function samplesAroundStall(queue: SampleQueue, offset: number): Promise<LoopSample[]> {
  await queue.next();
  setTimeout(() => burnCpu(200), offset);
  return [await queue.next(), await queue.next(), await queue.next()];
}

test.serial('no stall is lost, wherever it falls relative to the sample boundary', async (t) => {
  // Node's IntervalHistogram.reset() also forgets the time of the monitor's last tick, so the first delay
  // after a reset is never recorded: a stall starting or ending around a reset vanished (Node 20 and 24).
  const queue = startQueue(100);
  t.teardown(() => queue.sampler.stop());
  const misses: string[] = [];
  for (let offset = 0; offset <= 110; offset += 10) {
    const samples = await samplesAroundStall(queue, offset);
    // At least one: a loaded machine may add a long delay of its own, but the stall must not vanish.
    if (!samples.some((sample) => sample.lag.max >= 150)) misses.push(`offset ${offset} ms: ${samples.map((s) => `max ${s.lag.max} elu ${s.elu.toFixed(2)}`).join(' | ')}`);
  }
  t.deepEqual(misses, []);
});

test.serial('a stall\'s lag and its busy time land in the same sample, wherever it falls', async (t) => {
  // The sampler's timer can run just before a stalling timer in one timers phase, and the probe's tick
  // (due later) after it: the stall's busy time then fell in one sample and its lag in the next, so
  // status showed a p99 of 190 ms beside an ELU of 0.02. Offsets step by 1 ms over the interval so that
  // some stalls start in the same timers phase as the sampler's tick.
  const queue = startQueue(100);
  t.teardown(() => queue.sampler.stop());
  const split: string[] = [];
  for (let offset = 95; offset <= 105; offset += 1) {
    const samples = await samplesAroundStall(queue, offset);
    const seen = `offset ${offset} ms: ${samples.map((s) => `p99 ${s.lag.p99} elu ${s.elu.toFixed(2)} over ${s.intervalMs.toFixed(0)} ms`).join(' | ')}`;
    // The sample that holds the stall's busy time (ELU over >= 150 ms of the interval: the burn is
    // synchronous, so one sample has all of it) must show its lag too. Not the other way round: a
    // loaded machine may hold this process off the CPU for 150 ms while its loop is idle, a lag with
    // no busy time, which is no split.
    const busy = samples.filter((sample) => sample.elu * sample.intervalMs >= 150);
    if (busy.length === 0) split.push(`${seen} (no sample holds the stall's busy time)`);
    else if (busy.some((sample) => sample.lag.p99 < 150)) split.push(seen);
  }
  t.deepEqual(split, []);
});

test.serial('an idle interval shows small lag and low ELU', async (t) => {
  const queue = startQueue(100);
  t.teardown(() => queue.sampler.stop());
  await queue.next(); // the first one may include this file's start-up
  // Max below the stall tests' threshold. A loaded machine may hold this process off the CPU for a
  // while in any one interval (a lag of its own), so one of up to ten samples in a row must be calm;
  // a sampler that reads an idle loop as lagging or busy shows it in every one.
  const idle = (sample: LoopSample): boolean => sample.lag.p50 < 20 && sample.lag.max < 150 && sample.elu < 0.5 && sample.cpu >= 0 && sample.cpu < 50;
  const seen: string[] = [];
  let sample = await queue.next();
  for (let i = 1; i < 10 && !idle(sample); i++) {
    seen.push(`lag ${JSON.stringify(sample.lag)} elu ${sample.elu.toFixed(3)} cpu ${sample.cpu.toFixed(1)}%`);
    sample = await queue.next();
  }
  if (seen.length > 0) t.log(`not calm, skipped: ${seen.join(' | ')}`);
  t.log(`lag ${JSON.stringify(sample.lag)} elu ${sample.elu.toFixed(3)} cpu ${sample.cpu.toFixed(1)}%`);
  t.true(sample.lag.p50 < 20, `p50 ${sample.lag.p50}`);
  t.true(sample.lag.max < 150, `max ${sample.lag.max}`);
  t.true(sample.elu < 0.5, `elu ${sample.elu}`);
  t.true(sample.cpu >= 0 && sample.cpu < 50, `cpu ${sample.cpu}`);
});

test.serial('HTTP counters: rps is the change in requests over the interval', async (t) => {
  const queue = startQueue(100);
  t.teardown(() => queue.sampler.stop());
  await queue.next();
  queue.traffic.requests += 50;
  queue.traffic.inflight = 3;
  queue.traffic.connections = 2;
  const busy = await queue.next();
  t.like(busy.http, { requests: 50, inflight: 3, connections: 2 });
  t.true(Math.abs(busy.http.rps - (50 * 1000) / busy.intervalMs) < 1e-9, `rps ${busy.http.rps} over ${busy.intervalMs} ms`);
  queue.traffic.inflight = 0;
  const quiet = await queue.next();
  t.deepEqual(quiet.http, { rps: 0, requests: 50, inflight: 0, connections: 2 });
});

test.serial('loop iterations are reported exactly where uvMetricsInfo exists', async (t) => {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  const documented = major > 22 || (major === 22 && minor >= 8) || (major === 20 && minor >= 18);
  t.is(hasUvMetrics, documented, `Node ${process.versions.node}`);
  t.is(uvMetricsReader() !== null, hasUvMetrics);
  const queue = startQueue(100);
  t.teardown(() => queue.sampler.stop());
  const sample = await queue.next();
  if (!hasUvMetrics) {
    t.is(sample.loop, null);
    return;
  }
  t.not(sample.loop, null);
  // The lag monitor's own 10 ms timer alone wakes the loop about 100 times a second.
  t.true(sample.loop!.iterationsPerSec > 0, JSON.stringify(sample.loop));
  t.true(sample.loop!.eventsPerSec >= 0 && sample.loop!.eventsWaiting >= 0);
});

test.serial('memory and active resources are read', async (t) => {
  const queue = startQueue(100);
  t.teardown(() => queue.sampler.stop());
  const refTimer = setTimeout(() => {}, 60_000);
  t.teardown(() => clearTimeout(refTimer));
  const sample = await queue.next();
  const { memory } = sample;
  for (const [key, value] of Object.entries(memory)) t.true(Number.isInteger(value) && value >= 0, `${key} ${value}`);
  t.true(memory.rss > 0 && memory.heapUsed > 0 && memory.heapUsed <= memory.heapTotal);
  t.true((sample.resources.Timeout ?? 0) >= 1, JSON.stringify(sample.resources));
  t.true(Object.values(sample.resources).every((n) => Number.isInteger(n) && n > 0));
});

test('countResources counts by type, even names an object inherits', (t) => {
  t.deepEqual(countResources([]), {});
  t.deepEqual(countResources(['Timeout', 'TCPSocketWrap', 'Timeout', 'toString']), { Timeout: 2, TCPSocketWrap: 1, toString: 1 });
});

test.serial('sampleNow returns a sample without calling onSample and restarts the interval', async (t) => {
  const queue = startQueue(100);
  t.teardown(() => queue.sampler.stop());
  await queue.next();
  const delivered = queue.delivered;
  queue.traffic.requests += 7;
  const before = performance.now();
  const sample = queue.sampler.sampleNow();
  t.is(queue.delivered, delivered);
  t.is(sample.http.requests, 7);
  t.true(sample.http.rps > 0);
  const again = queue.sampler.sampleNow();
  // The second covers only the time since the first: the baselines moved.
  t.true(again.intervalMs <= performance.now() - before, `${again.intervalMs} ms`);
  t.is(again.http.rps, 0);
  t.is(again.http.requests, 7);
  queue.sampler.stop();
  t.throws(() => queue.sampler.sampleNow(), { message: /not running/ });
});

test.serial('stop() releases the timer and the delay probe; start() may follow', async (t) => {
  const before = process.getActiveResourcesInfo().sort();
  const queue = startQueue(100);
  await queue.next();
  t.true(queue.sampler.running);
  queue.sampler.stop();
  queue.sampler.stop(); // idempotent
  t.false(queue.sampler.running);
  t.deepEqual(process.getActiveResourcesInfo().sort(), before);

  // Observe the stopped sampler for three intervals: no sample arrives, and where libuv counts loop
  // iterations, the 10 ms delay probe no longer wakes the loop (about 30 wake-ups if it still ran).
  const delivered = queue.delivered;
  const readUv = uvMetricsReader();
  const loopsBefore = readUv?.().loopCount ?? 0;
  await observeFor(300);
  t.is(queue.delivered, delivered);
  if (readUv) t.true(readUv().loopCount - loopsBefore < 10, `${readUv().loopCount - loopsBefore} iterations`);

  const restartedAt = performance.now();
  queue.sampler.start();
  t.teardown(() => queue.sampler.stop());
  const sample = await queue.next();
  // Its interval began at start(), not at the last sample before stop() (300 ms and more earlier): it
  // is no longer than the time since start(), however late the machine delivered the sample.
  t.true(sample.intervalMs <= performance.now() - restartedAt, `${sample.intervalMs} ms, ${performance.now() - restartedAt} ms since start()`);
});

test('an onSample that throws goes to onError, and sampling goes on', async (t) => {
  const errors: unknown[] = [];
  let calls = 0;
  let resolve = (): void => {};
  const secondCall = new Promise<void>((r) => (resolve = r));
  const keepAlive = setTimeout(() => {}, 2 ** 31 - 1); // the sampler's timers are unref'd
  t.teardown(() => clearTimeout(keepAlive));
  const sampler = createSampler({
    intervalMs: 20,
    traffic: { requests: 0, inflight: 0, connections: 0 },
    onSample() {
      if (++calls === 2) resolve();
      throw new Error(`boom ${calls}`);
    },
    onError: (error) => errors.push(error),
  });
  sampler.start();
  t.teardown(() => sampler.stop());
  await secondCall;
  sampler.stop();
  t.is(errors.length, 2);
  t.is((errors[0] as Error).message, 'boom 1');
});

const badOptions: Array<[Partial<SamplerOptions>, RegExp]> = [
  [{ intervalMs: 0 }, /`intervalMs` option .* got `0`/],
  [{ intervalMs: Number.NaN }, /`intervalMs` option .* got `NaN`/],
  [{ intervalMs: 2 ** 31 }, /`intervalMs` option .* got `2147483648`/],
  [{ intervalMs: 1000, resolutionMs: 0.5 }, /`resolutionMs` option .* got `0.5`/],
  [{ intervalMs: 1000, resolutionMs: 0 }, /`resolutionMs` option .* got `0`/],
  [{ intervalMs: 100, resolutionMs: 200 }, /`resolutionMs` option .*\(100\), got `200`/],
];

for (const [options, message] of badOptions) {
  test(`createSampler rejects ${JSON.stringify(options).replace('null', 'NaN')}`, (t) => {
    t.throws(() => createSampler({ traffic: { requests: 0, inflight: 0, connections: 0 }, onSample() {}, intervalMs: 1000, ...options }), {
      instanceOf: RangeError,
      message,
    });
  });
}

test('a running sampler does not keep a process alive', async (t) => {
  const fixture = fileURLToPath(new URL('fixtures/sampler-exits.ts', import.meta.url));
  const result = await execa(process.execPath, ['--import', 'tsx', fixture], { timeout: 30_000, reject: false });
  t.false(result.timedOut, 'the child was still alive after 30 s');
  t.is(result.exitCode, 0, result.stderr);
  const { samples, running } = JSON.parse(result.stdout) as { samples: number; running: boolean };
  t.true(samples >= 1, 'it sampled while its own timer kept it alive');
  t.true(running, 'the sampler was never stopped');
});
