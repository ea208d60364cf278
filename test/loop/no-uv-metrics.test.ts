// Node < 20.18 / 22.8 has no performance.nodeTiming.uvMetricsInfo. Hide the getter to play that Node; its
// own file because ava runs each file in its own process and this changes a global.
import test from 'ava';
import { performance } from 'node:perf_hooks';
import { uvMetricsReader } from '../../src/loop/uv-metrics.js';
import { startQueue } from './helpers.js';

test('without uvMetricsInfo the sampler reports loop: null and everything else', async (t) => {
  // Node defines it on the instance, not on PerformanceNodeTiming.prototype; look along the chain.
  for (let owner: object | null = performance.nodeTiming; owner !== null; owner = Object.getPrototypeOf(owner) as object | null) {
    const descriptor = Object.getOwnPropertyDescriptor(owner, 'uvMetricsInfo');
    if (!descriptor) continue;
    t.true(Reflect.deleteProperty(owner, 'uvMetricsInfo'));
    const from = owner;
    t.teardown(() => Object.defineProperty(from, 'uvMetricsInfo', descriptor));
  }
  t.false('uvMetricsInfo' in performance.nodeTiming);
  t.is(uvMetricsReader(), null);

  const queue = startQueue(50);
  t.teardown(() => queue.sampler.stop());
  const sample = await queue.next();
  t.is(sample.loop, null);
  t.true(sample.elu >= 0 && sample.memory.rss > 0);
});
