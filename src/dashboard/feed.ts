// The dashboard's data: it follows the master (samples from the supervisor, markers from the
// master's events) into a History, and builds every message the page gets: a snapshot, then one
// update per tick, built once and written to every connected page.
import { BUCKET_MS, clipFeedText, frameLine, History, WINDOW_MS, type Bucket, type Marker, type MarkerKind } from './history.js';
import type { LoopSample, StackFrame } from '../loop/types.js';
import type { BlockedSite } from '../master/blocked-sites.js';
import type { MasterEvent, LogSink } from '../master/logs.js';
import type { ClusterTotals, WorkerStatus } from '../master/status.js';
import type { Supervisor } from '../master/supervisor.js';
import type { WorkerProcess } from '../master/worker.js';
import { printable } from '../errors.js';

/** A worker's figures: one sample's, or one bucket's. */
export type Figures = Omit<Bucket, 't' | 'samples'>;

export interface WorkerView {
  id: number;
  /** 0 while no process holds the id (one waiting out its restart backoff). */
  pid: number;
  /** The process's state, or WAITING_TO_RESTART while none holds the id. */
  state: string;
  generation: number;
  restarts: number;
  /** How long its loop has been blocked now, in ms (0 while it turns): its latest figures are from before. */
  blockedMs: number;
  /** The latest sample's figures, null before its first. */
  latest: Figures | null;
  /** The worst lag p99 over the last LEVEL_WINDOW_MS of samples: what colours the worker. */
  recentLagP99: number;
  /** Where its loop was caught blocked (--report-blocked) over the last 5 minutes, worst first, at most MAX_SITES. */
  blockedSites: BlockedSite[];
  /** All of the window's buckets in a snapshot; the last two in an update (a tick may cross a bucket's end). */
  buckets: Bucket[];
  /** The id's other processes, at most MAX_OTHERS, oldest first: the old worker draining, a successor starting. */
  others: ProcessView[];
}

/**
 * A process that shares its worker id with the one the card shows: during a reload, a restart or a
 * memory replacement, the successor while it starts, then the old worker while it drains (its open
 * connections, up to --grace). Counted in the totals; without them no set of cards added up to them.
 */
export interface ProcessView {
  pid: number;
  state: string;
  /** Its open connections, as its latest sample says (0 before its first). */
  connections: number;
}

/** Other processes listed per worker id: reloads one after another can leave several draining. */
export const MAX_OTHERS = 8;

interface MessageBase {
  now: number;
  generation: number;
  workersWanted: number;
  totals: ClusterTotals;
  workers: WorkerView[];
  markers: Marker[];
}

export type FeedSnapshot = MessageBase & { type: 'snapshot'; name: string; windowMs: number; bucketMs: number; statsIntervalMs: number };
export type FeedUpdate = MessageBase & { type: 'update' };
/** What the feed sends: the whole window once, then one update per tick. */
export type FeedMessage = FeedSnapshot | FeedUpdate;
/** What a page gets: the feed's messages, the snapshot also saying whether this dashboard takes actions and whether they need the token. */
export type DashboardMessage = (FeedSnapshot & { actions: boolean; token: boolean }) | FeedUpdate;

/** Where a dashboard's messages come from: the master's own feed, or (`clusterd dashboard`) its copy of one. */
export interface DashboardSource {
  /** The whole window, for a page that just connected (and GET /api/status). */
  snapshot(): FeedSnapshot;
  /** Calls `listener` with each message after the snapshot; returns the unsubscribe. */
  subscribe(listener: (message: FeedMessage) => void): () => void;
}

/**
 * A worker's colour goes by its worst lag p99 over this long (at least its last sample, at most the 60
 * the master keeps): with a short --stats-interval most samples miss a block that comes once a second,
 * and the colour would flicker between red and green.
 */
export const LEVEL_WINDOW_MS = 2000;

/** Blocking sites sent per worker: the page lists the worst. */
export const MAX_SITES = 5;

/** Ticks no faster than this whatever --stats-interval: a page cannot use more, and each tick costs every page. */
export const MIN_TICK_MS = 250;

/** The state of a wanted worker id that no process holds now: it crashed and waits out its restart backoff. */
export const WAITING_TO_RESTART = 'waiting to restart';

export class DashboardFeed implements DashboardSource {
  readonly history = new History();
  readonly #supervisor: Supervisor;
  readonly #stop: Array<() => void> = [];
  readonly #listeners = new Set<(message: FeedMessage) => void>();
  #timer: NodeJS.Timeout | null = null;
  /** The markers' seq the last update went out with. */
  #sentSeq = 0;
  /** An id's buckets were forgotten: the next tick sends a snapshot, which the pages start over from. */
  #startOver = false;

  constructor({ supervisor, logs }: { supervisor: Supervisor; logs: LogSink }) {
    this.#supervisor = supervisor;
    // An id's figures are its own processes' (the worker, a successor booting): the old worker of an
    // id scaled away drains into nothing, and must not write into the id if it is scaled back meanwhile.
    const onSample = (worker: WorkerProcess, sample: LoopSample): void => {
      const slot = supervisor.slot(worker.id);
      if (slot && (slot.worker === worker || slot.successor === worker)) this.history.add(worker.id, sample);
    };
    const onBlocking = (worker: WorkerProcess, { frames, blockedMs, lasted }: { frames: StackFrame[]; blockedMs: number; lasted?: Promise<number> }): void => {
      const said = `worker ${worker.id} (pid ${worker.pid}) loop blocked`;
      const marker = this.history.mark({ kind: 'blocked', worker: worker.id, text: `${said}, still going at ${blockedMs} ms`, stack: frames.map(frameLine) });
      // Caught at --report-blocked's threshold: a 2 s block read "103 ms" beside its site's "longest
      // 2025 ms". Once the loop turns, the marker says how long the block lasted.
      const count = marker.count ?? 1;
      void lasted?.then((ms) => this.history.amend(marker, count, `${said} for ${ms} ms`));
    };
    supervisor.on('sample', onSample);
    supervisor.on('blocking', onBlocking);
    this.#stop.push(
      () => supervisor.off('sample', onSample),
      () => supervisor.off('blocking', onBlocking),
      supervisor.onChange(() => this.#forgetScaledAway()),
      logs.onEvent((event) => {
        const marker = markerOf(event, supervisor);
        if (marker) this.history.mark({ time: event.time, ...marker });
      }),
    );
  }

  /** The whole window, for a page that just connected (and GET /api/status). */
  snapshot(now = Date.now()): FeedSnapshot {
    const series = this.history.series(now);
    const { config } = this.#supervisor;
    return {
      type: 'snapshot',
      name: config.name,
      windowMs: WINDOW_MS,
      bucketMs: BUCKET_MS,
      statsIntervalMs: config.statsIntervalMs,
      ...this.#base(now, (id) => series.get(id) ?? [], this.history.markers(now)),
    };
  }

  /** Calls `listener` with an update every tick; the ticks run only while someone listens. */
  subscribe(listener: (message: FeedMessage) => void): () => void {
    this.#listeners.add(listener);
    if (!this.#timer) {
      // The first page has just had the snapshot: nothing to start over from.
      this.#sentSeq = this.history.seq;
      this.#startOver = false;
      const { statsIntervalMs } = this.#supervisor.config;
      this.#timer = setInterval(() => this.#tick(), Math.max(MIN_TICK_MS, statsIntervalMs || 1000));
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0 && this.#timer) {
        clearInterval(this.#timer);
        this.#timer = null;
      }
    };
  }

  close(): void {
    for (const stop of this.#stop.splice(0)) stop();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#listeners.clear();
  }

  /**
   * An id scaled away is no longer the cluster's, and one scaled back is a new worker, counted from 0
   * (README): its buckets go, in the master and (by a snapshot) in every page. Those of an id that is
   * the cluster's still, its process replaced (a reload, a restart, a crash), stay.
   */
  #forgetScaledAway(): void {
    for (const id of this.history.ids()) {
      if (!this.#supervisor.slot(id) && this.history.forget(id)) this.#startOver = true;
    }
  }

  #tick(): void {
    const now = Date.now();
    if (this.#startOver) {
      this.#startOver = false;
      const snapshot = this.snapshot(now);
      this.#sentSeq = this.history.seq;
      for (const listener of this.#listeners) listener(snapshot);
      return;
    }
    // Markers go out once, to every page: one that connected since has them in its snapshot.
    const markers = this.history.markers(now, this.#sentSeq);
    this.#sentSeq = this.history.seq;
    const message: FeedUpdate = { type: 'update', ...this.#base(now, (id) => this.history.tail(id, 2), markers) };
    for (const listener of this.#listeners) listener(message);
  }

  #base(now: number, buckets: (id: number) => Bucket[], markers: Marker[]): MessageBase {
    const supervisor = this.#supervisor;
    const status = supervisor.status();
    const serving = new Map(supervisor.workers().map((worker) => [worker.id, worker.pid]));
    const levelSamples = Math.max(1, Math.ceil(LEVEL_WINDOW_MS / (supervisor.config.statsIntervalMs || LEVEL_WINDOW_MS)));
    // One view per worker id: its serving process (a reload's successor or a draining worker share
    // the id, and are listed on it), or, with none serving (scaled away, draining), its oldest.
    const byId = new Map<number, WorkerStatus[]>();
    for (const worker of status.workers) byId.set(worker.id, [...(byId.get(worker.id) ?? []), worker]);
    const workers = new Map<number, WorkerView>();
    for (const [id, processes] of byId) {
      const worker = processes.find((candidate) => candidate.pid === serving.get(id)) ?? processes[0]!;
      const others = processes.filter((other) => other !== worker).slice(-MAX_OTHERS);
      workers.set(worker.id, {
        id: worker.id,
        pid: worker.pid,
        state: worker.state,
        generation: worker.generation,
        restarts: worker.restarts,
        blockedMs: worker.blockedMs,
        latest: worker.sample ? figures(worker.sample) : null,
        blockedSites: feedSites(worker.blockedSites),
        recentLagP99: Math.max(0, ...worker.history.slice(-levelSamples).map((sample) => sample.lag.p99)),
        buckets: buckets(worker.id),
        others: others.map((other) => ({ pid: other.pid, state: other.state, connections: other.sample?.http.connections ?? 0 })),
      });
    }
    // A wanted id with no process (crashed, waiting out its backoff of up to 15 s; `status` names it
    // too) is listed all the same: its card is the one to watch, and a page or `clusterd dashboard`
    // drops the buckets of an id a message leaves out, which an update (two buckets) never gives back.
    if (supervisor.phase === 'booting' || supervisor.phase === 'running') {
      for (const { id } of status.waiting) {
        if (workers.has(id)) continue;
        workers.set(id, {
          id,
          pid: 0,
          state: WAITING_TO_RESTART,
          generation: supervisor.generation,
          restarts: supervisor.restarts(id),
          blockedMs: 0,
          latest: null,
          recentLagP99: 0,
          blockedSites: feedSites(supervisor.blockedSites.sites(id, now)),
          buckets: buckets(id),
          // A successor being forked has no view of its own: it is the worker now.
          others: [],
        });
      }
    }
    const views = [...workers.values()].sort((a, b) => a.id - b.id);
    return { now, generation: supervisor.generation, workersWanted: supervisor.desired, totals: status.totals, workers: views, markers };
  }
}

/** The worst MAX_SITES of `sites`, their names as the page may show them. */
function feedSites(sites: BlockedSite[]): BlockedSite[] {
  return sites.slice(0, MAX_SITES).map((site) => ({ ...site, function: clipFeedText(printable(site.function)), url: clipFeedText(printable(site.url)) }));
}

function figures(sample: LoopSample): Figures {
  return {
    lagP50: sample.lag.p50,
    lagP99: sample.lag.p99,
    lagMax: sample.lag.max,
    elu: sample.elu,
    cpu: sample.cpu,
    rss: sample.memory.rss,
    heap: sample.memory.heapUsed,
    rps: sample.http.rps,
    connections: sample.http.connections,
  };
}

/**
 * The codes of an operation refused for what was asked (an unknown worker id, a bad count), not for
 * the cluster's state: a refusal because another operation runs (ERR_CLUSTERD_BUSY) is a marker, and
 * so is a restart that had begun (`started`: its successor forked) when its id was scaled away.
 */
const BAD_INPUT = new Set(['ERR_CLUSTERD_NO_WORKER', 'ERR_CLUSTERD_USAGE']);

/** The marker a master event makes on the time axis, if any. */
export function markerOf(
  { event, message, data }: Pick<MasterEvent, 'event' | 'message' | 'data'>,
  cluster: { generation: number; desired: number },
): { kind: MarkerKind; worker: number | null; text: string; stack?: string[]; failed?: boolean } | null {
  const worker = typeof data.worker === 'number' ? data.worker : null;
  const operation = typeof data.operation === 'string' ? data.operation : '';
  // An action that failed (a restart refused while a reload runs) is marked as such, not as one done.
  const failed = event === 'operation-failed' ? { failed: true } : {};
  // One refused for the asker's own mistake happened to nothing in the cluster: no marker (105
  // restarts of a worker 9 that does not exist pushed the real markers out of the page's list).
  if (event === 'operation-failed' && typeof data.code === 'string' && BAD_INPUT.has(data.code) && data.started !== true) return null;
  switch (event) {
    case 'worker-exit':
    case 'boot-failed':
      return { kind: 'restart', worker, text: message };
    case 'memory-restarted':
      return { kind: 'memory', worker, text: message };
    // Its app closed every server (it takes no connections, and the card turns red), or listens again.
    case 'worker-not-listening':
    case 'worker-listening':
      return { kind: 'listening', worker, text: message };
    case 'blocked': {
      // The watchdog's line ends with the stack; the marker carries it as frames.
      const stack = Array.isArray(data.stack) ? (data.stack as StackFrame[]).map(frameLine) : [];
      return { kind: 'watchdog', worker, text: message.split('\n')[0]!.replace(/ Stack:$/, ''), stack };
    }
    case 'operation':
    case 'operation-failed':
      if (operation === 'reload') return { kind: 'reload', worker: null, text: event === 'operation' ? `reload: generation ${cluster.generation}` : message, ...failed };
      if (operation.startsWith('scale')) return { kind: 'scale', worker: null, text: event === 'operation' ? `${message}: ${cluster.desired} ${cluster.desired === 1 ? 'worker' : 'workers'}` : message, ...failed };
      if (operation === 'restart') return { kind: 'restart', worker, text: message, ...failed };
      return null;
    default:
      return null;
  }
}
