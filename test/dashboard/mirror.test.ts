// DashboardMirror: `clusterd dashboard`'s copy of the master's window, kept as the page keeps its
// own: buckets merged by time, markers by id, what leaves the window or the cluster dropped.
import test from 'ava';
import type { FeedMessage, FeedSnapshot, FeedUpdate } from '../../src/dashboard/feed.js';
import { DashboardMirror } from '../../src/dashboard/mirror.js';
import { snapshot } from './helpers/messages.js';

const NOW = 1_796_000_000_000;

function updateOf(base: FeedSnapshot, edit: Partial<FeedUpdate>): FeedUpdate {
  const { name: _name, windowMs: _windowMs, bucketMs: _bucketMs, statsIntervalMs: _statsIntervalMs, ...rest } = base;
  return { ...rest, type: 'update', markers: [], ...edit };
}

test('an update before any snapshot is ignored; the snapshot is served as it came', (t) => {
  const mirror = new DashboardMirror();
  const heard: FeedMessage[] = [];
  mirror.subscribe((message) => heard.push(message));
  mirror.accept(updateOf(snapshot(), {}));
  t.false(mirror.ready);
  t.throws(() => mirror.snapshot());
  mirror.accept(snapshot());
  t.true(mirror.ready);
  t.deepEqual(mirror.snapshot(), snapshot());
  t.is(heard.length, 1);
});

test('updates: buckets merged by time, markers by id, workers and totals replaced, the window pruned', (t) => {
  const mirror = new DashboardMirror();
  const start = snapshot();
  // Worker 1 holds a bucket about to leave the window.
  start.workers[0]!.buckets.unshift({ ...start.workers[0]!.buckets[0]!, t: NOW - start.windowMs + 1000 });
  mirror.accept(start);
  const heard: FeedMessage[] = [];
  const unsubscribe = mirror.subscribe((message) => heard.push(message));

  const last = start.workers[0]!.buckets.at(-1)!;
  const later = NOW + 2000;
  mirror.accept(
    updateOf(start, {
      now: later,
      generation: 2,
      totals: { ...start.totals, rps: 1 },
      // Worker 2 is gone (scaled down); worker 1's last bucket grew and a new one began.
      workers: [{ ...start.workers[0]!, pid: 999, buckets: [{ ...last, samples: 5 }, { ...last, t: last.t + 2000, samples: 1 }] }],
      markers: [
        { ...start.markers[0]!, seq: 7, count: 3 },
        { id: 2, seq: 8, time: later, kind: 'reload', worker: null, text: 'reload: generation 2' },
      ],
    }),
  );
  const now = mirror.snapshot();
  t.is(now.now, later);
  t.is(now.generation, 2);
  t.is(now.totals.rps, 1);
  t.is(now.name, 'api', 'the snapshot fields stay');
  t.deepEqual(now.workers.map((worker) => [worker.id, worker.pid]), [[1, 999]]);
  t.deepEqual(now.workers[0]!.buckets.map((bucket) => [bucket.t, bucket.samples]), [[last.t, 5], [last.t + 2000, 1]], 'the old bucket left the window');
  t.deepEqual(now.markers.map((marker) => [marker.id, marker.count ?? 1]), [[1, 3], [2, 1]]);
  t.is(heard.length, 1);
  t.is(heard[0]!.type, 'update');

  // A fresh snapshot (after the master skipped updates for a slow reader) starts over.
  mirror.accept(snapshot());
  t.deepEqual(mirror.snapshot(), snapshot());
  unsubscribe();
  mirror.accept(snapshot());
  t.is(heard.length, 2);
});
