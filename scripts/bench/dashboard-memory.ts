// `npm run bench:dashboard-memory`: what the dashboard's history (src/dashboard/history.ts) holds in
// the master's heap at its fullest: a whole 15-minute window of buckets for 1, 16 and 64 worker ids
// and MAX_MARKERS markers (half with a two-frame stack). The master keeps it from its start, with or
// without --dashboard, so that `clusterd dashboard` shows the window at once. Heap after a full GC,
// before and after filling; run with --expose-gc (the npm script does).
import { BUCKET_MS, BUCKETS, History, MAX_MARKERS } from '../../src/dashboard/history.js';
import type { LoopSample } from '../../src/loop/types.js';

function sample(i: number): LoopSample {
  return {
    time: 0,
    intervalMs: 1000,
    lag: { mean: 1, p50: 1 + (i % 7), p90: 2, p99: 3.3 + (i % 5), max: 9.1 },
    elu: Math.random(),
    loop: null,
    cpu: Math.random() * 100,
    memory: { rss: 5e7 + i, heapUsed: 1e7 + i, heapTotal: 2e7, external: 0, arrayBuffers: 0 },
    resources: {},
    http: { rps: Math.random() * 100, requests: 1, inflight: 0, connections: i % 10 },
  };
}

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('bench:dashboard-memory: run with node --expose-gc');
  process.exit(2);
}
const kept: History[] = [];
const rows = ['| worker ids | buckets each | markers | heap (KiB) |', '|---:|---:|---:|---:|'];
for (const workers of [1, 16, 64]) {
  gc();
  const before = process.memoryUsage().heapUsed;
  const history = new History();
  const start = Date.now() - BUCKETS * BUCKET_MS + 1000;
  for (let b = 0; b < BUCKETS; b++) for (let id = 1; id <= workers; id++) history.add(id, sample(b), start + b * BUCKET_MS);
  for (let m = 0; m < MAX_MARKERS; m++) {
    const stack = m % 2 ? ['spinForever (file:///srv/app/server.js:12:5)', 'listOnTimeout (node:internal/timers:581:17)'] : undefined;
    history.mark({ time: start + m * 900, kind: 'restart', worker: 1 + (m % workers), text: `worker ${1 + (m % workers)} (pid 12345) exited with code 1; restarting`, stack });
  }
  gc();
  const after = process.memoryUsage().heapUsed;
  kept.push(history);
  rows.push(`| ${workers} | ${history.tail(1, BUCKETS).length} | ${history.markers(start + BUCKETS * BUCKET_MS - 1).length} | ${((after - before) / 1024).toFixed(0)} |`);
}
console.log(rows.join('\n'));
