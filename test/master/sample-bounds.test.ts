// The checks a worker's loop sample passes before the master keeps it (src/master/sample-bounds.ts):
// what a real sampler measures passes them, and a figure no worker could measure is named.
import test from 'ava';
import { performance } from 'node:perf_hooks';
import { totalmem } from 'node:os';
import { implausibleSample, MAX_PER_SECOND, type SampleContext } from '../../src/master/sample-bounds.js';
import type { LoopSample } from '../../src/loop/types.js';
import { burnCpu, startQueue } from '../loop/helpers.js';
import { sample } from '../control/helpers/fake-source.js';

test.serial("a real sampler's samples pass, through stalls, CPU burnt and request counts that grow", async (t) => {
  // The master's clock starts before the worker's sampler does.
  const startedTick = performance.now();
  const queue = startQueue(50);
  t.teardown(() => queue.sampler.stop());
  let sampledMs = 0;
  let previous: LoopSample | null = null;
  for (let round = 0; round < 12; round++) {
    if (round % 3 === 1) burnCpu(60);
    queue.traffic.requests += round * 7;
    queue.traffic.inflight = round % 4;
    queue.traffic.connections = round % 5;
    const sample = await queue.next();
    const context: SampleContext = { uptimeMs: performance.now() - startedTick, sampledMs, previous };
    t.is(implausibleSample(sample, context), null, JSON.stringify(sample));
    sampledMs += sample.intervalMs;
    previous = sample;
  }
});

/** A sample a worker up for 10 s could send, its previous one a second before (its counts past that one's). */
function plausible(): LoopSample {
  return sample({ loop: { iterationsPerSec: 950, eventsPerSec: 1200, eventsWaiting: 30 }, http: { rps: 310, requests: 1310, inflight: 2, connections: 14 } });
}

const context = (): SampleContext => ({ uptimeMs: 10_000, sampledMs: 8000, previous: { ...plausible(), http: { rps: 100, requests: 1000, inflight: 0, connections: 10 } } });

test('a plausible sample passes', (t) => {
  t.is(implausibleSample(plausible(), context()), null);
  t.is(implausibleSample(plausible(), { ...context(), previous: null, sampledMs: 0 }), null);
});

const refused = test.macro({
  exec(t, change: (sample: LoopSample) => Partial<LoopSample>, field: string, over: Partial<SampleContext> = {}) {
    const why = implausibleSample({ ...plausible(), ...change(plausible()) }, { ...context(), ...over });
    t.true(why?.startsWith(`${field}:`), String(why));
  },
  title: (what = '') => `refused: ${what}`,
});

test('samples covering more time than the worker has run', refused, () => ({ intervalMs: 2500 }), 'sample.intervalMs');
test('an interval of no time', refused, () => ({ intervalMs: 0 }), 'sample.intervalMs');
test('a lag longer than the worker has run', refused, (s) => ({ lag: { ...s.lag, p99: 20_000, max: 20_000 } }), 'sample.lag.max');
test('a p99 past the max', refused, (s) => ({ lag: { ...s.lag, p99: 5 } }), 'sample.lag');
test('a mean past the max', refused, (s) => ({ lag: { ...s.lag, mean: 5 } }), 'sample.lag');
test('percentiles out of order', refused, (s) => ({ lag: { ...s.lag, p50: 2 } }), 'sample.lag');
test('more CPU than every core of the machine', refused, () => ({ cpu: 100 * 100_000 }), 'sample.cpu');
test('more resident memory than the machine has', refused, (s) => ({ memory: { ...s.memory, rss: totalmem() + 1 } }), 'sample.memory.rss');
test('a heap using more than it holds', refused, (s) => ({ memory: { ...s.memory, heapUsed: 40e6 } }), 'sample.memory.heapUsed');
test('a running total of requests that fell', refused, (s) => ({ http: { ...s.http, requests: 999, rps: 0 } }), 'sample.http.requests');
test('more requests than a worker can have had in its life', refused, (s) => ({ http: { ...s.http, requests: MAX_PER_SECOND * 11, rps: 0 } }), 'sample.http.requests');
test('a request rate past any worker', refused, (s) => ({ intervalMs: 1, http: { ...s.http, rps: MAX_PER_SECOND + 1, requests: 1000 + MAX_PER_SECOND } }), 'sample.http.rps');
test('a request rate its total did not grow by', refused, (s) => ({ http: { ...s.http, rps: 311 } }), 'sample.http.rps');
test('more requests in flight than it has had', refused, (s) => ({ http: { ...s.http, inflight: 1311 } }), 'sample.http.inflight');
test('connections grown past any worker', refused, (s) => ({ http: { ...s.http, connections: 10 + MAX_PER_SECOND + 1 } }), 'sample.http.connections');
test('loop iterations past any loop', refused, (s) => ({ loop: { ...s.loop!, iterationsPerSec: MAX_PER_SECOND + 1 } }), 'sample.loop.iterationsPerSec');
test('more events found waiting than handled', refused, (s) => ({ loop: { ...s.loop!, eventsWaiting: 1201 } }), 'sample.loop.eventsWaiting');
