// The dashboard's feed on a stand-in supervisor: samples become buckets, master events and
// --report-blocked catches become markers, an update carries each worker's last buckets and the
// markers once, and the tick timer runs only while a page listens (nothing left behind on close).
import test from 'ava';
import { EventEmitter } from 'node:events';
import { DashboardFeed, type FeedMessage } from '../../src/dashboard/feed.js';
import { DashboardMirror } from '../../src/dashboard/mirror.js';
import type { LoopSample } from '../../src/loop/types.js';
import { LogSink } from '../../src/master/logs.js';
import type { Supervisor } from '../../src/master/supervisor.js';
import { waitFor } from '../helpers/cluster.js';

function sample(p99: number): LoopSample {
  return {
    time: Date.now(),
    intervalMs: 10,
    lag: { mean: 1, p50: 1, p90: p99, p99, max: p99 },
    elu: 0.5,
    loop: null,
    cpu: 50,
    memory: { rss: 1e6, heapUsed: 1e5, heapTotal: 2e5, external: 0, arrayBuffers: 0 },
    resources: {},
    http: { rps: 1, requests: 1, inflight: 0, connections: 1 },
  };
}

/** Enough of a Supervisor for the feed: two workers, samples and events on demand. */
function standIn() {
  const workers = [1, 2].map((id) => ({ id, pid: 100 + id, state: 'ready', generation: 1, history: [] as LoopSample[] }));
  const emitter = new EventEmitter();
  const supervisor = Object.assign(emitter, {
    config: { name: 'app', statsIntervalMs: 10 },
    phase: 'running',
    generation: 1,
    desired: 2,
    restarts: (id: number) => (id === 2 ? 3 : 0),
    blockedSites: { sites: () => [] },
    workers: () => workers,
    // An id asked for has a slot; its worker, as the master's, is the process that serves it.
    slot: (id: number) => (id <= supervisor.desired ? { id, worker: workers.find((worker) => worker.id === id) ?? null, successor: null } : undefined),
    onChange: (listener: () => void) => {
      emitter.on('change', listener);
      return () => emitter.off('change', listener);
    },
    status: () => ({
      workers: workers.map((worker) => ({ ...worker, restarts: 0, sample: worker.history.at(-1) ?? null, blockedSites: [] })),
      totals: { workers: 2, ready: 2, rps: 0, inflight: 0, connections: 0, rss: 0, restarts: 0 },
      // As the master's: an id asked for that no process holds waits to be restarted.
      waiting: Array.from({ length: supervisor.desired }, (_, index) => index + 1).filter((id) => !workers.some((worker) => worker.id === id)).map((id) => ({ id, crashes: 1, restartInMs: 100 })),
    }),
  });
  const emitSample = (id: number, value: LoopSample): void => {
    workers[id - 1]!.history.push(value);
    emitter.emit('sample', workers[id - 1], value);
  };
  return { supervisor: supervisor as unknown as Supervisor, emitter, emitSample, workers };
}

const quiet = () => new LogSink({ format: 'json', output: { stdout: { write: () => true }, stderr: { write: () => true } } });

test('snapshot and updates: one view per worker, the colour from the last 2 s, markers once', async (t) => {
  const { supervisor, emitter, emitSample, workers } = standIn();
  const logs = quiet();
  const feed = new DashboardFeed({ supervisor, logs });
  t.teardown(() => feed.close());

  emitSample(1, sample(700));
  emitSample(1, sample(2));
  emitSample(2, sample(3));
  logs.event('worker-exit', 'worker 2 (pid 102) exited with code 1; restarting', { worker: 2, pid: 102, code: 1 }, 'warn');
  emitter.emit('blocking', workers[0], { frames: [{ functionName: 'spin', url: 'file:///app.js', line: 2, column: 3 }], blockedMs: 150 });

  const snapshot = feed.snapshot();
  t.is(snapshot.type, 'snapshot');
  t.deepEqual(snapshot.workers.map((worker) => [worker.id, worker.latest?.lagP99, worker.recentLagP99]), [[1, 2, 700], [2, 3, 3]]);
  t.deepEqual(snapshot.markers.map((marker) => [marker.kind, marker.worker]), [['restart', 2], ['blocked', 1]]);
  t.deepEqual(snapshot.markers[1]!.stack, ['spin (file:///app.js:2:3)']);

  const updates: FeedMessage[] = [];
  let unsubscribe = (): void => {};
  // Ticks at MIN_TICK_MS (the interval, 10 ms, is shorter): the second one ends the wait.
  const two = new Promise<void>((resolve) => {
    unsubscribe = feed.subscribe((message) => {
      if (updates.push(message) === 2) resolve();
    });
  });
  logs.event('operation', 'reload done', { operation: 'reload' });
  await two;
  unsubscribe();
  t.is(updates[0]!.type, 'update');
  t.deepEqual(updates[0]!.markers.map((marker) => marker.kind), ['reload']);
  t.deepEqual(updates[1]!.markers, [], 'a marker goes out once');
  for (const worker of updates[0]!.workers) t.true(worker.buckets.length >= 1 && worker.buckets.length <= 2);
});

test('the tick timer runs only while someone listens; close stops everything', (t) => {
  const { supervisor, emitter } = standIn();
  const logs = quiet();
  const feed = new DashboardFeed({ supervisor, logs });
  t.is(emitter.listenerCount('sample'), 1);
  const before = process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
  const first = feed.subscribe(() => {});
  const second = feed.subscribe(() => {});
  t.is(process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length, before + 1, 'one timer for every page');
  first();
  second();
  t.is(process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length, before);
  feed.subscribe(() => {});
  feed.close();
  t.is(process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length, before);
  t.is(emitter.listenerCount('sample'), 0);
  t.is(emitter.listenerCount('blocking'), 0);
});

test('a wanted id with no process (waiting out its restart backoff) keeps its view and its buckets, in the feed and in a mirror', async (t) => {
  const { supervisor, emitSample, workers } = standIn();
  const feed = new DashboardFeed({ supervisor, logs: quiet() });
  t.teardown(() => feed.close());
  emitSample(1, sample(2));
  emitSample(2, sample(3));
  const mirror = new DashboardMirror();
  mirror.accept(feed.snapshot());

  // Worker 2 crashed: no process holds id 2 until its backoff is over.
  workers.splice(1, 1);
  const snapshot = feed.snapshot();
  t.deepEqual(snapshot.workers.map((worker) => [worker.id, worker.pid, worker.state, worker.restarts]), [[1, 101, 'ready', 0], [2, 0, 'waiting to restart', 3]]);
  t.is(snapshot.workers[1]!.buckets.length, 1, 'its buckets stay in the snapshot');
  t.is(snapshot.workers[1]!.latest, null);

  // An update lists it too: `clusterd dashboard`'s copy (and an open page) keep its chart.
  const update = await new Promise<FeedMessage>((resolve) => {
    const unsubscribe = feed.subscribe((message) => {
      unsubscribe();
      resolve(message);
    });
  });
  t.deepEqual(update.workers.map((worker) => [worker.id, worker.state]), [[1, 'ready'], [2, 'waiting to restart']]);
  mirror.accept(update);
  t.deepEqual(mirror.snapshot().workers.map((worker) => [worker.id, worker.buckets.length]), [[1, 1], [2, 1]]);

  // Scaled away, it is gone.
  (supervisor as unknown as { desired: number }).desired = 1;
  t.deepEqual(feed.snapshot().workers.map((worker) => worker.id), [1]);
});

test('a blocked-loop marker caught at the threshold says its whole length once the loop turns, and goes out again', async (t) => {
  const { supervisor, emitter, workers } = standIn();
  const feed = new DashboardFeed({ supervisor, logs: quiet() });
  t.teardown(() => feed.close());
  let end = (_ms: number): void => {};
  const lasted = new Promise<number>((resolve) => (end = resolve));
  emitter.emit('blocking', workers[0], { frames: [{ functionName: 'spin', url: 'file:///app.js', line: 2, column: 3 }], blockedMs: 103, lasted });
  const [caught] = feed.snapshot().markers;
  t.is(caught!.text, 'worker 1 (pid 101) loop blocked, still going at 103 ms');

  const updates: FeedMessage[] = [];
  const unsubscribe = feed.subscribe((message) => updates.push(message));
  t.teardown(unsubscribe);
  end(2025);
  const sent = await waitFor(() => updates.flatMap((message) => message.markers).find((marker) => marker.id === caught!.id) ?? null, { timeoutMs: 5000, what: 'the marker sent again' });
  t.is(sent.text, 'worker 1 (pid 101) loop blocked for 2025 ms');
  t.is(feed.snapshot().markers[0]!.text, 'worker 1 (pid 101) loop blocked for 2025 ms');

  // A second block caught at the same threshold merges into the marker, with the same words: the
  // first's length, known later, is not written over the second's.
  let endFirst = (_ms: number): void => {};
  emitter.emit('blocking', workers[1], { frames: [], blockedMs: 103, lasted: new Promise<number>((resolve) => (endFirst = resolve)) });
  emitter.emit('blocking', workers[1], { frames: [], blockedMs: 103, lasted: new Promise<number>(() => {}) });
  const merged = feed.snapshot().markers.find((marker) => marker.worker === 2)!;
  t.is(merged.count, 2);
  endFirst(900);
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.is(feed.snapshot().markers.find((marker) => marker.worker === 2)!.text, 'worker 2 (pid 102) loop blocked, still going at 103 ms');
});

test('an id scaled away forgets its buckets, and the pages start over (a snapshot); its old process draining, even into the id scaled back, adds none', async (t) => {
  const { supervisor, emitter, emitSample, workers } = standIn();
  const feed = new DashboardFeed({ supervisor, logs: quiet() });
  t.teardown(() => feed.close());
  emitSample(1, sample(2));
  emitSample(2, sample(800));
  const messages: FeedMessage[] = [];
  t.teardown(feed.subscribe((message) => messages.push(message)));

  // Scaled to 1: id 2 has no slot; its process drains.
  const old = workers[1]!;
  (supervisor as unknown as { desired: number }).desired = 1;
  emitter.emit('change');
  t.deepEqual([...feed.history.series().keys()], [1]);
  const fresh = await waitFor(() => messages.find((message) => message.type === 'snapshot'), { timeoutMs: 5000, what: 'a snapshot to start over from' });
  t.deepEqual(fresh.workers.find((worker) => worker.id === 2)?.buckets ?? [], []);

  // Scaled back to 2 while the old process still drains: a new worker holds id 2.
  (supervisor as unknown as { desired: number }).desired = 2;
  workers[1] = { ...old, pid: 202 };
  emitter.emit('sample', old, sample(900));
  t.deepEqual([...feed.history.series().keys()], [1], 'the old process wrote nothing');
  emitSample(2, sample(3));
  t.deepEqual(feed.history.series().get(2)!.map((bucket) => bucket.lagMax), [3], 'the new worker counts from nothing');
  // A process replaced under an id it keeps (a reload, a restart) keeps the id's buckets.
  workers[0] = { ...workers[0]!, pid: 301 };
  emitter.emit('change');
  t.is(feed.history.series().get(1)!.length, 1);
});
