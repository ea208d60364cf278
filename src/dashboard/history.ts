// What the dashboard remembers: each worker id's figures over the last 15 minutes and the markers
// (restarts, reloads, scale changes, replacements, blocked loops, workers that stop or start
// listening) on the same time axis.
//
// Bounded whatever the worker count or --stats-interval: samples are merged into fixed buckets of
// BUCKET_MS (a 10 ms interval puts 200 samples in one bucket, a 10 s one leaves gaps), so a worker id
// holds at most BUCKETS buckets of 11 numbers (~100 KB per id at most, counting V8's object overhead);
// ids are slots, 1 to MAX_INSTANCES, reused after a scale-down (the feed forgets an id scaled away),
// and an id with nothing in the window is dropped. Markers are at most MAX_MARKERS in all (blocked-loop reports, which a bad app can
// send every second, and listening changes are merged per worker and go first when the cap is reached).
import type { LoopSample, StackFrame } from '../loop/types.js';
import { clip, printable } from '../errors.js';

export const WINDOW_MS = 15 * 60_000;
export const BUCKETS = 450;
/** 2 s: the chart's resolution, and the longest a blocked worker waits to show in it. */
export const BUCKET_MS = WINDOW_MS / BUCKETS;
export const MAX_MARKERS = 1000;
/** A worker's blocked-loop reports (or listening changes) this close to its previous one are merged into that marker. */
export const MERGE_MS = 10_000;
/**
 * The kinds a worker can make many of (a blocked loop reported every second, an app that closes and
 * reopens its servers: two markers per swap): merged per worker, and the first to go at the cap.
 */
const MERGED_KINDS: ReadonlySet<MarkerKind> = new Set(['blocked', 'listening']);

/** One worker's figures over one bucket: the worst lag, mean rates, the last levels. */
export interface Bucket {
  /** Start of the bucket (epoch ms, a multiple of BUCKET_MS). */
  t: number;
  samples: number;
  lagP50: number;
  lagP99: number;
  lagMax: number;
  elu: number;
  cpu: number;
  rss: number;
  heap: number;
  rps: number;
  connections: number;
}

/** `listening`: a worker's app closed every server it listened on (it takes no connections), or listens again. */
export const MARKER_KINDS = ['restart', 'reload', 'scale', 'memory', 'watchdog', 'blocked', 'listening'] as const;
export type MarkerKind = (typeof MARKER_KINDS)[number];

export interface Marker {
  /** Stable for the marker's life. */
  id: number;
  /** Bumped when a merged report changes it: the stream re-sends markers past the last seq it sent. */
  seq: number;
  time: number;
  kind: MarkerKind;
  /** The worker id it is about, or null for the cluster (a reload, a scale change). */
  worker: number | null;
  text: string;
  /** Blocked loops and watchdog replacements: the stack, one frame a line. */
  stack?: string[];
  /** Reports merged into this one: blocked loops, or listening changes (the marker's text is the latest's). */
  count?: number;
  /** An action that failed (a restart refused, a reload rolled back): the page draws it apart from one done. */
  failed?: boolean;
}

/** `name (url:line:column)`, as the page shows a frame. */
export function frameLine({ functionName, url, line, column }: StackFrame): string {
  // What the app names (a function, a script's URL) is escaped, as the CLI does: a newline in a name
  // drew forged frames on the page, and U+202E turned a file and line around.
  return `${printable(functionName) || '(anonymous)'} (${printable(url) || '?'}:${line}:${column})`;
}

export class History {
  readonly #series = new Map<number, Bucket[]>();
  readonly #markers: Marker[] = [];
  #nextId = 1;
  #seq = 0;

  /** Adds a worker's sample, timed by the master's clock (a worker's own could be anything). */
  add(id: number, sample: LoopSample, now = Date.now()): void {
    const t = Math.floor(now / BUCKET_MS) * BUCKET_MS;
    let buckets = this.#series.get(id);
    if (!buckets) this.#series.set(id, (buckets = []));
    let bucket = buckets.at(-1);
    if (!bucket || bucket.t !== t) {
      bucket = { t, samples: 0, lagP50: 0, lagP99: 0, lagMax: 0, elu: 0, cpu: 0, rss: 0, heap: 0, rps: 0, connections: 0 };
      buckets.push(bucket);
      prune(buckets, now);
    }
    const n = ++bucket.samples;
    const mean = (previous: number, value: number): number => previous + (value - previous) / n;
    bucket.lagP50 = Math.max(bucket.lagP50, sample.lag.p50);
    bucket.lagP99 = Math.max(bucket.lagP99, sample.lag.p99);
    bucket.lagMax = Math.max(bucket.lagMax, sample.lag.max);
    bucket.elu = mean(bucket.elu, sample.elu);
    bucket.cpu = mean(bucket.cpu, sample.cpu);
    bucket.rps = mean(bucket.rps, sample.http.rps);
    bucket.rss = sample.memory.rss;
    bucket.heap = sample.memory.heapUsed;
    bucket.connections = sample.http.connections;
  }

  /** Every worker id's buckets within the window ending `now`, by id. */
  series(now = Date.now()): Map<number, Bucket[]> {
    for (const [id, buckets] of this.#series) {
      prune(buckets, now);
      if (buckets.length === 0) this.#series.delete(id);
    }
    return new Map([...this.#series].sort(([a], [b]) => a - b).map(([id, buckets]) => [id, buckets.map((bucket) => ({ ...bucket }))]));
  }

  /** The worker ids that have buckets. */
  ids(): number[] {
    return [...this.#series.keys()];
  }

  /** Forgets worker `id`'s buckets (it was scaled away: one scaled back is a new worker); whether it had any. */
  forget(id: number): boolean {
    return this.#series.delete(id);
  }

  /** Worker `id`'s last `count` buckets (what an update re-sends), oldest first. */
  tail(id: number, count: number): Bucket[] {
    return (this.#series.get(id) ?? []).slice(-count).map((bucket) => ({ ...bucket }));
  }

  /** Records a marker; a blocked-loop report (or listening change) close to the worker's previous one of its kind is merged into it. */
  mark({ time = Date.now(), kind, worker, text: given, stack: frames, failed }: { time?: number; kind: MarkerKind; worker: number | null; text: string; stack?: string[]; failed?: boolean }): Marker {
    // Within what a feed's reader accepts (schema.ts): a worker's exit carries its last stderr line.
    const text = clipFeedText(given);
    const stack = frames?.map(clipFeedText);
    if (MERGED_KINDS.has(kind)) {
      const previous = this.#markers.findLast((marker) => marker.kind === kind && marker.worker === worker);
      if (previous && time - previous.time <= MERGE_MS) {
        previous.count = (previous.count ?? 1) + 1;
        previous.time = time;
        previous.text = text;
        if (stack) previous.stack = stack;
        previous.seq = ++this.#seq;
        return previous;
      }
    }
    const marker: Marker = { id: this.#nextId++, seq: ++this.#seq, time, kind, worker, text, ...(stack ? { stack } : {}), ...(failed ? { failed } : {}) };
    this.#markers.push(marker);
    if (this.#markers.length > MAX_MARKERS) {
      const merged = this.#markers.findIndex((candidate) => MERGED_KINDS.has(candidate.kind));
      this.#markers.splice(merged === -1 ? 0 : merged, 1);
    }
    return marker;
  }

  /**
   * Replaces `marker`'s text with `to` (a blocked loop's length, known once it ends), and sends it
   * again; not when a later report merged into it since (its count is no longer `count`: two blocks
   * caught at one threshold read alike, so the text cannot tell) or it has gone.
   */
  amend(marker: Marker, count: number, to: string): void {
    if ((marker.count ?? 1) !== count || !this.#markers.includes(marker)) return;
    marker.text = clipFeedText(to);
    marker.seq = ++this.#seq;
  }

  /** Markers within the window ending `now` changed after `afterSeq`, oldest first. */
  markers(now = Date.now(), afterSeq = 0): Marker[] {
    while (this.#markers.length > 0 && this.#markers[0]!.time < now - WINDOW_MS) this.#markers.shift();
    return this.#markers.filter((marker) => marker.seq > afterSeq).sort((a, b) => a.time - b.time).map((marker) => ({ ...marker }));
  }

  /** The seq of the last change to the markers. */
  get seq(): number {
    return this.#seq;
  }
}

/** Drops the buckets that have left the window, and any over BUCKETS (a clock set back). */
function prune(buckets: Bucket[], now: number): void {
  let drop = 0;
  while (drop < buckets.length && buckets[drop]!.t <= now - WINDOW_MS) drop++;
  drop = Math.max(drop, buckets.length - BUCKETS);
  if (drop > 0) buckets.splice(0, drop);
}

/** The longest text a feed message carries (a marker's, a stack line, a site's name): what its readers accept. */
export const MAX_FEED_TEXT = 10_000;

/** `text` within MAX_FEED_TEXT. */
export function clipFeedText(text: string): string {
  return clip(text, MAX_FEED_TEXT);
}
