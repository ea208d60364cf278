// Well-formed dashboard messages, for the tests of what reads them.
import type { FeedSnapshot, FeedUpdate } from '../../../src/dashboard/feed.js';

const figures = { lagP50: 1, lagP99: 3.5, lagMax: 9, elu: 0.2, cpu: 12, rss: 5e7, heap: 1e7, rps: 40, connections: 3 };

/** A snapshot of two workers, one bucket each and one marker. */
export function snapshot(): FeedSnapshot {
  return {
    type: 'snapshot',
    name: 'api',
    windowMs: 900_000,
    bucketMs: 2000,
    statsIntervalMs: 1000,
    now: 1_796_000_000_000,
    generation: 1,
    workersWanted: 2,
    totals: { workers: 2, ready: 2, blocked: 0, desired: 2, rps: 80, inflight: 0, connections: 6, rss: 1e8, restarts: 0, memoryReplacements: 0 },
    workers: [1, 2].map((id) => ({
      id,
      pid: 100 + id,
      state: 'ready',
      generation: 1,
      restarts: 0,
      blockedMs: 0,
      latest: { ...figures },
      recentLagP99: 3.5,
      blockedSites: [{ function: 'spin', url: 'file:///app.js', line: 3, count: 2, maxMs: 700, lastSeen: 1_795_999_990_000 }],
      buckets: [{ t: 1_795_999_998_000, samples: 2, ...figures }],
      others: [],
    })),
    markers: [{ id: 1, seq: 1, time: 1_795_999_999_000, kind: 'blocked', worker: 1, text: 'worker 1 (pid 101) loop blocked', stack: ['spin (file:///app.js:3:1)'], count: 2 }],
  };
}

/** The update that goes with it: the same figures, no markers. */
export function update(): FeedUpdate {
  const { name: _name, windowMs: _windowMs, bucketMs: _bucketMs, statsIntervalMs: _statsIntervalMs, ...rest } = snapshot();
  return { ...rest, type: 'update', markers: [] };
}
