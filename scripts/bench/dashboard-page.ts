// `npm run bench:dashboard-page`: what the dashboard page costs its browser with a full 15-minute
// window, which bench:dashboard (a fresh cluster, its charts nearly empty) cannot show. Serves the
// real page and server (startDashboard) from a synthetic source: W workers with every bucket of the
// window filled, 1000 markers (the most the master keeps), and one update a second that moves the
// window on, as the master's feed does at the default --stats-interval. One headless page of Debian's
// chromium (playwright-core) follows it; over --seconds, its main thread's busy time (CDP
// Performance.getMetrics TaskDuration, % of one core) and its JS heap, and this process's CPU for
// building and writing the updates (what a master spends on them, without the master's other work).
//   --workers 4,16,64     the worker counts, one step each
//   --seconds N           how long each step is measured (default 20)
import { existsSync } from 'node:fs';
import { setTimeout as pause } from 'node:timers/promises';
import { chromium } from 'playwright-core';
import type { DashboardActions } from '../../src/dashboard/actions.js';
import type { DashboardSource, FeedMessage, FeedSnapshot, WorkerView } from '../../src/dashboard/feed.js';
import { BUCKET_MS, BUCKETS, MAX_MARKERS, MARKER_KINDS, WINDOW_MS, type Bucket, type Marker } from '../../src/dashboard/history.js';
import { startDashboard } from '../../src/dashboard/server.js';

const CHROMIUM = '/usr/bin/chromium';
const TICK_MS = 1000;

/** A bucket with figures that move, so the charts have something to draw. */
function bucket(t: number, id: number): Bucket {
  const wave = Math.sin(t / 60_000 + id);
  return {
    t,
    samples: 2,
    lagP50: 1 + wave,
    lagP99: 8 + 6 * wave + (t % 37_000 < BUCKET_MS ? 400 : 0),
    lagMax: 20 + 10 * wave,
    elu: 0.4 + 0.3 * wave,
    cpu: 40 + 30 * wave,
    rss: 80e6 + 5e6 * wave,
    heap: 30e6 + 4e6 * wave,
    rps: 900 + 400 * wave,
    connections: 30 + Math.round(10 * wave),
  };
}

class SyntheticSource implements DashboardSource {
  readonly #workers: number;
  #now = Math.floor(Date.now() / BUCKET_MS) * BUCKET_MS;
  readonly #markers: Marker[] = [];
  readonly #listeners = new Set<(message: FeedMessage) => void>();
  readonly #timer: NodeJS.Timeout;
  #nextMarker = 1;

  constructor(workers: number) {
    this.#workers = workers;
    // The cap, spread over the window, blocked-loop reports with a stack for half of them.
    for (let i = 0; i < MAX_MARKERS; i++) this.#markers.push(this.#marker(this.#now - WINDOW_MS + (i * WINDOW_MS) / MAX_MARKERS, i));
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
  }

  snapshot(): FeedSnapshot {
    const buckets = (id: number): Bucket[] => Array.from({ length: BUCKETS }, (_, i) => bucket(this.#bucketStart() - (BUCKETS - 1 - i) * BUCKET_MS, id));
    return { type: 'snapshot', name: 'bench', windowMs: WINDOW_MS, bucketMs: BUCKET_MS, statsIntervalMs: TICK_MS, ...this.#base(buckets, this.#markers) };
  }

  subscribe(listener: (message: FeedMessage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    clearInterval(this.#timer);
  }

  #bucketStart(): number {
    return Math.floor(this.#now / BUCKET_MS) * BUCKET_MS;
  }

  #marker(time: number, i: number): Marker {
    const kind = MARKER_KINDS[i % MARKER_KINDS.length]!;
    const id = this.#nextMarker++;
    const worker = (i % this.#workers) + 1;
    const stack = kind === 'blocked' || kind === 'watchdog' ? ['spin (file:///srv/app/server.js:41:9)', 'handle (file:///srv/app/server.js:12:3)'] : undefined;
    return { id, seq: id, time, kind, worker, text: `worker ${worker}: ${kind} marker ${id}`, ...(stack ? { stack } : {}) };
  }

  #tick(): void {
    this.#now += TICK_MS;
    // A new marker every 10 s, as a cluster with a flaky worker would have.
    const markers = this.#now % 10_000 < TICK_MS ? [this.#marker(this.#now, this.#nextMarker)] : [];
    this.#markers.push(...markers);
    if (this.#markers.length > MAX_MARKERS) this.#markers.shift();
    const message: FeedMessage = { type: 'update', ...this.#base((id) => [bucket(this.#bucketStart() - BUCKET_MS, id), bucket(this.#bucketStart(), id)], markers) };
    for (const listener of this.#listeners) listener(message);
  }

  #base(buckets: (id: number) => Bucket[], markers: Marker[]): Omit<FeedSnapshot, 'type' | 'name' | 'windowMs' | 'bucketMs' | 'statsIntervalMs'> {
    const workers: WorkerView[] = Array.from({ length: this.#workers }, (_, index) => {
      const id = index + 1;
      const all = buckets(id);
      const { t: _t, samples: _samples, ...latest } = all.at(-1)!;
      return { id, pid: 10_000 + id, state: 'ready', generation: 1, restarts: 0, blockedMs: 0, latest, recentLagP99: latest.lagP99, blockedSites: [], buckets: all, others: [] };
    });
    const totals = { workers: this.#workers, ready: this.#workers, blocked: 0, desired: this.#workers, rps: 900 * this.#workers, inflight: 0, connections: 30 * this.#workers, rss: 80e6 * this.#workers, restarts: 0, memoryReplacements: 0 };
    return { now: this.#now, generation: 1, workersWanted: this.#workers, totals, workers, markers };
  }
}

const refuse = (): Promise<never> => Promise.reject(new Error('no actions in this benchmark'));
const NO_ACTIONS: DashboardActions = { reload: refuse, restart: refuse, profile: refuse, loop: refuse };

async function step(workers: number, seconds: number): Promise<string> {
  const source = new SyntheticSource(workers);
  const server = await startDashboard({ listen: { host: '127.0.0.1', port: 0 }, name: 'bench', source, actions: NO_ACTIONS, token: null });
  const snapshotBytes = JSON.stringify(source.snapshot()).length;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (message) => message.type() === 'error' && errors.push(message.text()));
    page.on('pageerror', (error) => errors.push(error.message));
    const loadStart = performance.now();
    await page.goto(server.url);
    await page.locator('[data-worker-id]').nth(workers - 1).waitFor({ timeout: 60_000 });
    const loadMs = performance.now() - loadStart;
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    const metric = async (name: string): Promise<number> => (await cdp.send('Performance.getMetrics')).metrics.find((entry) => entry.name === name)?.value ?? 0;
    // The first updates after the snapshot.
    await pause(3000);
    const busyBefore = await metric('TaskDuration');
    const cpuBefore = process.cpuUsage();
    await pause(seconds * 1000);
    const busy = ((await metric('TaskDuration')) - busyBefore) / seconds * 100;
    const cpu = process.cpuUsage(cpuBefore);
    const server_ = (cpu.user + cpu.system) / 1e6 / seconds * 100;
    const heap = (await metric('JSHeapUsedSize')) / 1024 / 1024;
    if (errors.length > 0) throw new Error(`the page logged errors: ${errors.join('; ')}`);
    return `| ${workers} | ${(snapshotBytes / 1024).toFixed(0)} | ${loadMs.toFixed(0)} | ${busy.toFixed(2)} | ${heap.toFixed(1)} | ${server_.toFixed(2)} |`;
  } finally {
    await browser.close();
    await server.close();
    source.close();
  }
}

async function main(argv: string[]): Promise<number> {
  let seconds = 20;
  let workers = [4, 16, 64];
  const usage = 'usage: npm run bench:dashboard-page -- [--workers 4,16,64] [--seconds N]';
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    if (argv[i] === '--seconds' && Number(value) > 0 && Number(value) <= 600) {
      seconds = Number(value);
      i++;
    } else if (argv[i] === '--workers' && value && /^\d+(,\d+)*$/.test(value) && value.split(',').every((count) => Number(count) >= 1 && Number(count) <= 1024)) {
      workers = value.split(',').map(Number);
      i++;
    } else {
      console.error(`bench:dashboard-page: bad argument ${argv[i]} (${usage}; at most 600 s and 1024 workers)`);
      return 2;
    }
  }
  if (!existsSync(CHROMIUM)) {
    console.error(`bench:dashboard-page: needs Debian's chromium at ${CHROMIUM} (scripts/ci-deps.sh installs it)`);
    return 1;
  }
  const rows = [
    '| workers | snapshot (KiB) | page load to every worker shown (ms) | page main thread busy (% of a core) | page JS heap (MiB) | server CPU for the updates (% of a core) |',
    '|---:|---:|---:|---:|---:|---:|',
  ];
  for (const count of workers) {
    rows.push(await step(count, seconds));
    console.error(rows.at(-1));
  }
  console.log(rows.join('\n'));
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
