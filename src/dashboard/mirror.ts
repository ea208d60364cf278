// `clusterd dashboard`'s copy of a master's feed: the snapshot the Dashboard rpc starts with, kept
// up to date with each update (as the page merges them), so a page that connects later gets the
// whole window at once without another stream to the master.
import type { DashboardSource, FeedMessage, FeedSnapshot, WorkerView } from './feed.js';
import type { Bucket, Marker } from './history.js';
import { MAX_MARKERS } from './history.js';

export class DashboardMirror implements DashboardSource {
  #state: FeedSnapshot | null = null;
  readonly #listeners = new Set<(message: FeedMessage) => void>();

  /** Whether the first snapshot has come. */
  get ready(): boolean {
    return this.#state !== null;
  }

  /** Takes the master's next message (checked already: schema.ts) and passes it on to every listener. */
  accept(message: FeedMessage): void {
    if (message.type === 'snapshot') this.#state = message;
    else if (this.#state) this.#state = merge(this.#state, message);
    // An update before any snapshot has nothing to apply to; the master never sends one.
    else return;
    for (const listener of this.#listeners) listener(message);
  }

  snapshot(): FeedSnapshot {
    if (!this.#state) throw new Error('the dashboard mirror has no snapshot yet');
    return this.#state;
  }

  subscribe(listener: (message: FeedMessage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    this.#listeners.clear();
  }
}

/** The window after `update`: its figures and workers, their buckets merged by time, markers by id; what left the window dropped. */
export function merge(state: FeedSnapshot, update: Extract<FeedMessage, { type: 'update' }>): FeedSnapshot {
  const since = update.now - state.windowMs;
  const before = new Map(state.workers.map((worker) => [worker.id, worker]));
  const workers: WorkerView[] = update.workers.map((worker) => ({ ...worker, buckets: mergeBuckets(before.get(worker.id)?.buckets ?? [], worker.buckets, since) }));
  const markers = new Map<number, Marker>(state.markers.map((marker) => [marker.id, marker]));
  for (const marker of update.markers) markers.set(marker.id, marker);
  const kept = [...markers.values()].filter((marker) => marker.time >= since).sort((a, b) => a.time - b.time).slice(-MAX_MARKERS);
  return { ...state, now: update.now, generation: update.generation, workersWanted: update.workersWanted, totals: update.totals, workers, markers: kept };
}

function mergeBuckets(known: Bucket[], fresh: Bucket[], since: number): Bucket[] {
  const byTime = new Map(known.map((bucket) => [bucket.t, bucket]));
  for (const bucket of fresh) byTime.set(bucket.t, bucket);
  return [...byTime.values()].filter((bucket) => bucket.t > since).sort((a, b) => a.t - b.t);
}
