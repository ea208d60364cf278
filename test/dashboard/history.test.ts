// The dashboard's history: bounded whatever the sample rate and time span, merged into buckets as
// the page draws them; markers capped, blocked-loop reports merged; master events as markers.
import test from 'ava';
import { markerOf } from '../../src/dashboard/feed.js';
import { MERGE_MS, BUCKET_MS, BUCKETS, History, MAX_FEED_TEXT, MAX_MARKERS, WINDOW_MS } from '../../src/dashboard/history.js';
import type { LoopSample } from '../../src/loop/types.js';

const T0 = 1_800_000_000_000;

function sample({ p99 = 1, elu = 0.1, rps = 0, rss = 50e6, connections = 0 } = {}): LoopSample {
  return {
    time: 0,
    intervalMs: 1000,
    lag: { mean: p99 / 2, p50: p99 / 2, p90: p99, p99, max: p99 * 1.1 },
    elu,
    loop: null,
    cpu: elu * 100,
    memory: { rss, heapUsed: rss / 10, heapTotal: rss / 5, external: 0, arrayBuffers: 0 },
    resources: {},
    http: { rps, requests: 0, inflight: 0, connections },
  };
}

test('samples in one bucket merge: the worst lag, mean rates, the last levels', (t) => {
  const history = new History();
  history.add(1, sample({ p99: 5, elu: 0.2, rps: 10, rss: 100 }), T0);
  history.add(1, sample({ p99: 300, elu: 0.6, rps: 30, rss: 200, connections: 3 }), T0 + 10);
  history.add(1, sample({ p99: 7, elu: 0.4, rps: 20, rss: 300 }), T0 + 20);
  const [bucket, ...rest] = history.series(T0 + 20).get(1)!;
  t.deepEqual(rest, []);
  t.is(bucket!.t, Math.floor(T0 / BUCKET_MS) * BUCKET_MS);
  t.is(bucket!.samples, 3);
  t.is(bucket!.lagP99, 300);
  t.is(bucket!.lagMax, 330);
  t.is(bucket!.elu.toFixed(6), (0.4).toFixed(6));
  t.is(bucket!.rps, 20);
  t.is(bucket!.rss, 300);
  t.is(bucket!.connections, 0);
});

const bounded = test.macro({
  exec(t, intervalMs: number, spanMs: number, workers: number) {
    const history = new History();
    let now = T0;
    for (; now < T0 + spanMs; now += intervalMs) for (let id = 1; id <= workers; id++) history.add(id, sample({ p99: id }), now);
    const series = history.series(now);
    t.is(series.size, workers);
    for (const buckets of series.values()) {
      t.true(buckets.length <= BUCKETS, `${buckets.length} buckets`);
      t.true(buckets[0]!.t > now - WINDOW_MS - BUCKET_MS, 'nothing older than the window');
      t.deepEqual(buckets.map((bucket) => bucket.t), [...buckets.map((bucket) => bucket.t)].sort((a, b) => a - b));
    }
    // A full window's worth, at any rate: one bucket per BUCKET_MS.
    if (spanMs >= WINDOW_MS && intervalMs <= BUCKET_MS) t.true(series.get(1)!.length >= BUCKETS - 1);
  },
  title: (_title, intervalMs: number, spanMs: number, workers: number) => `bounded: every ${intervalMs} ms for ${spanMs / 60_000} min, ${workers} workers`,
});
test(bounded, 10, 20 * 60_000, 1);
test(bounded, 1000, 60 * 60_000, 8);
test(bounded, 10_000, 30 * 60_000, 2);

test('an id with nothing in the window is dropped; the clock set back keeps the bound', (t) => {
  const history = new History();
  history.add(1, sample(), T0);
  history.add(2, sample(), T0);
  history.add(2, sample(), T0 + WINDOW_MS);
  t.deepEqual([...history.series(T0 + WINDOW_MS + 1).keys()], [2]);
  // Samples timed backwards (the master's clock stepped back) still leave at most BUCKETS.
  for (let i = 0; i < BUCKETS * 2; i++) history.add(3, sample(), T0 + WINDOW_MS - i * BUCKET_MS);
  t.is(history.tail(3, BUCKETS * 2).length, BUCKETS);
});

test('tail: the last buckets, copies', (t) => {
  const history = new History();
  for (let i = 0; i < 5; i++) history.add(1, sample({ p99: i }), T0 + i * BUCKET_MS);
  const tail = history.tail(1, 2);
  t.deepEqual(tail.map((bucket) => bucket.lagP99), [3, 4]);
  tail[0]!.lagP99 = 99;
  t.is(history.tail(1, 2)[0]!.lagP99, 3);
  t.deepEqual(history.tail(9, 2), []);
});

test('blocked-loop reports close together merge into one marker, re-sent with a new seq', (t) => {
  const history = new History();
  const first = history.mark({ time: T0, kind: 'blocked', worker: 1, text: 'blocked 200 ms', stack: ['a (x.js:1:1)'] });
  const seq = history.seq;
  const merged = history.mark({ time: T0 + MERGE_MS, kind: 'blocked', worker: 1, text: 'blocked 300 ms', stack: ['b (x.js:2:1)'] });
  t.is(merged.id, first.id);
  t.is(merged.count, 2);
  t.deepEqual(history.markers(T0 + MERGE_MS, seq).map((marker) => [marker.id, marker.text, marker.stack]), [[first.id, 'blocked 300 ms', ['b (x.js:2:1)']]]);
  // Another worker's, or one later than the merge window, is a marker of its own.
  t.not(history.mark({ time: T0 + MERGE_MS, kind: 'blocked', worker: 2, text: 'w2' }).id, first.id);
  t.not(history.mark({ time: T0 + 3 * MERGE_MS, kind: 'blocked', worker: 1, text: 'later' }).id, first.id);
  t.is(history.markers(T0 + 3 * MERGE_MS).length, 3);
});

test('listening changes close together merge into one marker per worker, and go before restarts at the cap', (t) => {
  // An app that closes and reopens its servers made two markers per swap, and pushed restarts out.
  const history = new History();
  const down = history.mark({ time: T0, kind: 'listening', worker: 1, text: 'worker 1 (pid 9) closed every server it listened on' });
  const up = history.mark({ time: T0 + 50, kind: 'listening', worker: 1, text: 'worker 1 (pid 9) listens again: ready' });
  t.is(up.id, down.id);
  t.is(up.count, 2);
  t.not(history.mark({ time: T0 + 60, kind: 'listening', worker: 2, text: 'w2' }).id, down.id);
  t.not(history.mark({ time: T0 + 60, kind: 'blocked', worker: 1, text: 'blocked' }).id, down.id, 'a blocked report is not merged into it');
  const capped = new History();
  capped.mark({ time: T0, kind: 'restart', worker: 1, text: 'worker 1 exited' });
  for (let i = 0; i < MAX_MARKERS + 10; i++) capped.mark({ time: T0 + 1 + i * (MERGE_MS + 1), kind: 'listening', worker: 1, text: `l${i}` });
  const markers = capped.markers(T0 + 1);
  t.is(markers.length, MAX_MARKERS);
  t.is(markers[0]!.kind, 'restart');
});

test('markers: at most MAX_MARKERS, blocked ones dropped first, none older than the window', (t) => {
  const history = new History();
  history.mark({ time: T0, kind: 'reload', worker: null, text: 'reload: generation 2' });
  for (let i = 0; i < MAX_MARKERS + 10; i++) history.mark({ time: T0 + 1 + i * (MERGE_MS + 1), kind: 'blocked', worker: 1, text: `b${i}` });
  const markers = history.markers(T0 + 1);
  t.is(markers.length, MAX_MARKERS);
  t.is(markers[0]!.kind, 'reload', 'the reload outlives the flood of blocked reports');
  t.deepEqual(history.markers(T0 + WINDOW_MS + 2).filter((marker) => marker.kind === 'reload'), []);
});

test('master events as markers', (t) => {
  const cluster = { generation: 3, desired: 4 };
  const mark = (event: string, data: Record<string, unknown> = {}, message = 'm') => markerOf({ event, message, data }, cluster);
  t.deepEqual(mark('worker-exit', { worker: 2 }, 'worker 2 (pid 9) exited with code 1; restarting'), { kind: 'restart', worker: 2, text: 'worker 2 (pid 9) exited with code 1; restarting' });
  t.deepEqual(mark('operation', { operation: 'reload' }), { kind: 'reload', worker: null, text: 'reload: generation 3' });
  t.deepEqual(mark('operation-failed', { operation: 'reload' }, 'reload failed: boom'), { kind: 'reload', worker: null, text: 'reload failed: boom', failed: true });
  t.deepEqual(mark('operation-failed', { operation: 'restart', worker: 2 }, 'restart of worker 2 failed: refused'), { kind: 'restart', worker: 2, text: 'restart of worker 2 failed: refused', failed: true });
  // Refused for what was asked (a worker that does not exist, a bad count): nothing happened, no marker.
  t.is(mark('operation-failed', { operation: 'restart', worker: 9, code: 'ERR_CLUSTERD_NO_WORKER' }, 'restart of worker 9 failed: no worker 9'), null);
  // A restart that had begun (its successor forked) when its id was scaled away: it happened, a marker.
  t.deepEqual(mark('operation-failed', { operation: 'restart', worker: 3, code: 'ERR_CLUSTERD_NO_WORKER', started: true }, 'restart of worker 3 failed: worker 3 was scaled away before it was replaced'), { kind: 'restart', worker: 3, text: 'restart of worker 3 failed: worker 3 was scaled away before it was replaced', failed: true });
  t.is(mark('operation-failed', { operation: 'scale', code: 'ERR_CLUSTERD_USAGE' }, 'scale to x failed: Expected a worker count'), null);
  // Refused because another operation runs: that is the cluster's state, a marker.
  t.deepEqual(mark('operation-failed', { operation: 'restart', worker: 2, code: 'ERR_CLUSTERD_BUSY' }, 'restart of worker 2 failed: refused'), { kind: 'restart', worker: 2, text: 'restart of worker 2 failed: refused', failed: true });
  t.deepEqual(mark('operation', { operation: 'scale +1' }, 'scale +1 done'), { kind: 'scale', worker: null, text: 'scale +1 done: 4 workers' });
  t.deepEqual(markerOf({ event: 'operation', message: 'scale to 1 done', data: { operation: 'scale' } }, { generation: 1, desired: 1 }), { kind: 'scale', worker: null, text: 'scale to 1 done: 1 worker' });
  t.deepEqual(mark('operation', { operation: 'restart', worker: 1 }, 'restart of worker 1 done'), { kind: 'restart', worker: 1, text: 'restart of worker 1 done' });
  t.deepEqual(mark('memory-restarted', { worker: 1 }), { kind: 'memory', worker: 1, text: 'm' });
  t.deepEqual(mark('worker-not-listening', { worker: 2, pid: 9 }, 'worker 2 (pid 9) closed every server it listened on'), { kind: 'listening', worker: 2, text: 'worker 2 (pid 9) closed every server it listened on' });
  t.deepEqual(mark('worker-listening', { worker: 2, pid: 9 }, 'worker 2 (pid 9) listens again: ready'), { kind: 'listening', worker: 2, text: 'worker 2 (pid 9) listens again: ready' });
  t.deepEqual(
    mark('blocked', { worker: 1, stack: [{ functionName: 'spin', url: 'file:///app.js', line: 3, column: 5 }] }, 'worker 1 (pid 9) event loop blocked for 5000 ms; replacing it. Stack:\n    at spin'),
    { kind: 'watchdog', worker: 1, text: 'worker 1 (pid 9) event loop blocked for 5000 ms; replacing it.', stack: ['spin (file:///app.js:3:5)'] },
  );
  t.is(mark('operation', { operation: 'stop' }), null);
  t.is(mark('ready'), null);
});

test("a marker's text and stack lines are clipped to what a feed's reader accepts (an app's stderr line can be 1 MiB)", (t) => {
  const history = new History();
  const marker = history.mark({ kind: 'restart', worker: 1, text: `worker 1 exited: ${'x'.repeat(20_000)}`, stack: ['y'.repeat(20_000), 'main (app.js:1:1)'] });
  t.is(marker.text.length, MAX_FEED_TEXT);
  t.true(marker.text.endsWith('…'));
  t.deepEqual(marker.stack!.map((line) => line.length), [MAX_FEED_TEXT, 'main (app.js:1:1)'.length]);
});
