// `--metrics HOST:PORT`: the master's ClusterStatus as Prometheus text exposition (format 0.0.4) at /metrics.
//
// Hand-rendered rather than built on prom-client: every figure already sits in the snapshot the master keeps,
// so a scrape is one pure function of ClusterStatus. prom-client's metric objects are stateful (a Counter only
// moves by inc(), a label set lingers until removed), so each scrape would reset and refill a registry and
// have to remember to drop the series of workers that went away. The format itself is small (exposition.ts).
import http from 'node:http';
import { oneLine } from '../errors.js';
import type { LoopSample } from '../loop/types.js';
import type { ClusterStatus, ControlSource, WorkerCounts, WorkerStatus } from '../master/status.js';
import type { WorkerState } from '../master/worker-state.js';
import { METRICS_CONTENT_TYPE, renderFamily, type Family, type Labels, type MetricType } from './exposition.js';
import { replyText, startEndpoint, type Endpoint } from './http-endpoint.js';
import { onePerId, shownState } from './worker-rows.js';
import { readProcessMetrics, type ProcessMetrics } from '../system/own-usage.js';

import { clusterdVersion } from '../version.js';

export { METRICS_CONTENT_TYPE };

export const METRICS_PATH = '/metrics';

const VERSION = clusterdVersion();

/** A per-worker family: the samples one worker contributes, beyond its `worker` label. */
interface WorkerFamily {
  name: string;
  type: MetricType;
  help: string;
  samples: (worker: WorkerStatus) => { labels?: Labels; value: number }[];
}

/** The states of clusterd_worker_state: a worker's lifecycle state, or `blocked`, as `status` shows its STATE. */
const STATES: readonly (WorkerState | 'blocked')[] = ['starting', 'ready', 'blocked', 'not-listening', 'stopping', 'exited'];

/** A figure from the latest sample; none until the first (a replacement carries its predecessor's until then: collect()). */
function fromSample(pick: (sample: LoopSample) => number | undefined): WorkerFamily['samples'] {
  return ({ sample }) => {
    const value = sample === null ? undefined : pick(sample);
    return value === undefined ? [] : [{ value }];
  };
}

const ms = (value: number): number => value / 1000;

// Lag percentiles are separate gauges (as prom-client's nodejs_eventloop_lag_p99_seconds), not one family
// with a `quantile` label: promtool rejects `quantile` on anything but a summary, and a summary promises a
// cumulative _sum and _count, which a delay histogram reset every interval cannot supply.
const WORKER_FAMILIES: readonly WorkerFamily[] = [
  {
    name: 'clusterd_worker_info',
    type: 'gauge',
    help: 'Constant 1, labelled with the pid of the process that now holds this worker id.',
    samples: ({ pid }) => [{ labels: { pid: String(pid) }, value: 1 }],
  },
  {
    name: 'clusterd_worker_state',
    type: 'gauge',
    help: 'Lifecycle state of the worker (blocked: ready, its event loop blocked now): 1 for the current state, 0 for the others.',
    samples: (worker) => STATES.map((each) => ({ labels: { state: each }, value: each === shownState(worker) ? 1 : 0 })),
  },
  {
    name: 'clusterd_worker_generation',
    type: 'gauge',
    help: 'Code generation the worker runs: 1 at start, +1 per reload.',
    samples: ({ generation }) => [{ value: generation }],
  },
  {
    name: 'clusterd_worker_start_time_seconds',
    type: 'gauge',
    help: 'Start time of the worker process since the Unix epoch, in seconds.',
    samples: ({ startedAt }) => [{ value: ms(startedAt) }],
  },
  {
    name: 'clusterd_worker_uptime_seconds',
    type: 'gauge',
    help: 'Time since the worker process started, in seconds.',
    samples: ({ uptimeMs }) => [{ value: ms(uptimeMs) }],
  },
  {
    name: 'clusterd_worker_last_sample_timestamp_seconds',
    type: 'gauge',
    help: 'When the latest stats sample was taken, since the Unix epoch, in seconds; a stale value means a stuck loop.',
    samples: fromSample((s) => ms(s.time)),
  },
  {
    // The lag gauges come from the worker's samples, which a blocked loop does not send: they hold what
    // they were before the block. This one comes from the master's watch on its heartbeat.
    name: 'clusterd_worker_event_loop_blocked_seconds',
    type: 'gauge',
    help: 'How long the worker\'s event loop has been blocked now (silent a second, or past the watchdog threshold), in seconds; 0 while it turns.',
    samples: ({ blockedMs }) => [{ value: ms(blockedMs) }],
  },
  {
    name: 'clusterd_worker_event_loop_lag_p50_seconds',
    type: 'gauge',
    help: 'Median event-loop delay over the last stats interval, in seconds.',
    samples: fromSample((s) => ms(s.lag.p50)),
  },
  {
    name: 'clusterd_worker_event_loop_lag_p90_seconds',
    type: 'gauge',
    help: '90th percentile of event-loop delay over the last stats interval, in seconds.',
    samples: fromSample((s) => ms(s.lag.p90)),
  },
  {
    name: 'clusterd_worker_event_loop_lag_p99_seconds',
    type: 'gauge',
    help: '99th percentile of event-loop delay over the last stats interval, in seconds.',
    samples: fromSample((s) => ms(s.lag.p99)),
  },
  {
    name: 'clusterd_worker_event_loop_lag_mean_seconds',
    type: 'gauge',
    help: 'Mean event-loop delay over the last stats interval, in seconds.',
    samples: fromSample((s) => ms(s.lag.mean)),
  },
  {
    name: 'clusterd_worker_event_loop_lag_max_seconds',
    type: 'gauge',
    help: 'Longest event-loop delay over the last stats interval, in seconds.',
    samples: fromSample((s) => ms(s.lag.max)),
  },
  {
    name: 'clusterd_worker_event_loop_utilization_ratio',
    type: 'gauge',
    help: 'Share of the last stats interval the event loop was not idle, 0 to 1.',
    samples: fromSample((s) => s.elu),
  },
  {
    name: 'clusterd_worker_event_loop_iterations_per_second',
    type: 'gauge',
    help: 'Event-loop iterations per second over the last stats interval, the lag monitor\'s own timer wake-ups included (absent where Node lacks uvMetricsInfo).',
    samples: fromSample((s) => s.loop?.iterationsPerSec),
  },
  {
    name: 'clusterd_worker_event_loop_events_per_second',
    type: 'gauge',
    help: 'Events the loop processed per second over the last stats interval (absent where Node lacks uvMetricsInfo).',
    samples: fromSample((s) => s.loop?.eventsPerSec),
  },
  {
    name: 'clusterd_worker_event_loop_events_waiting',
    type: 'gauge',
    help: 'Poll events already pending when the loop reached the poll phase, counted over the last stats interval; it grows as the loop falls behind (absent where Node lacks uvMetricsInfo).',
    samples: fromSample((s) => s.loop?.eventsWaiting),
  },
  {
    name: 'clusterd_worker_cpu_ratio',
    type: 'gauge',
    help: 'CPU time (user + system) over the last stats interval, as a fraction of one core.',
    samples: fromSample((s) => s.cpu / 100),
  },
  {
    name: 'clusterd_worker_memory_rss_bytes',
    type: 'gauge',
    help: 'Resident set size of the worker process, in bytes.',
    samples: fromSample((s) => s.memory.rss),
  },
  {
    name: 'clusterd_worker_memory_heap_used_bytes',
    type: 'gauge',
    help: 'V8 heap in use, in bytes.',
    samples: fromSample((s) => s.memory.heapUsed),
  },
  {
    name: 'clusterd_worker_memory_heap_total_bytes',
    type: 'gauge',
    help: 'V8 heap allocated, in bytes.',
    samples: fromSample((s) => s.memory.heapTotal),
  },
  {
    name: 'clusterd_worker_memory_external_bytes',
    type: 'gauge',
    help: 'Memory of C++ objects bound to JavaScript objects, in bytes.',
    samples: fromSample((s) => s.memory.external),
  },
  {
    name: 'clusterd_worker_memory_array_buffers_bytes',
    type: 'gauge',
    help: 'Memory of ArrayBuffers and SharedArrayBuffers (included in external), in bytes.',
    samples: fromSample((s) => s.memory.arrayBuffers),
  },
  {
    name: 'clusterd_worker_http_requests_per_second',
    type: 'gauge',
    help: 'HTTP requests per second over the last stats interval, across every server the app started.',
    samples: fromSample((s) => s.http.rps),
  },
  {
    // The worker's running total: it starts again from 0 when the process behind this worker id is replaced,
    // which rate() and increase() treat as a counter reset. No cluster-wide total for the same reason: a sum of
    // counters that reset on their own is not a counter; sum(rate(...)) is.
    name: 'clusterd_worker_http_requests_total',
    type: 'counter',
    help: 'HTTP requests received by the worker process since it started, across every server the app started.',
    samples: fromSample((s) => s.http.requests),
  },
  {
    name: 'clusterd_worker_http_requests_in_flight',
    type: 'gauge',
    help: 'HTTP requests received and not yet answered.',
    samples: fromSample((s) => s.http.inflight),
  },
  {
    name: 'clusterd_worker_http_connections',
    type: 'gauge',
    help: 'Open connections to the HTTP servers of the app.',
    samples: fromSample((s) => s.http.connections),
  },
  {
    name: 'clusterd_worker_active_resources',
    type: 'gauge',
    help: 'Active libuv handles and requests keeping the loop alive, by type (process.getActiveResourcesInfo()).',
    samples: ({ sample }) =>
      sample === null
        ? []
        : Object.entries(sample.resources)
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
            .map(([type, count]) => ({ labels: { type }, value: count })),
  },
];

/**
 * A worker id's counters: written for every id that has counts, whether or not a process holds it now (one
 * waiting out its restart backoff), so that their series do not come and go with processes. A scale-down
 * drops an id's series; scaled back, it starts from 0 (a new worker: Prometheus reads a reset).
 */
const COUNT_FAMILIES: readonly { name: string; help: string; value: (counts: WorkerCounts) => number }[] = [
  {
    name: 'clusterd_worker_restarts_total',
    help: 'Times this worker id was replaced after an unexpected exit, since the master started (or scaled up to the id).',
    value: ({ restarts }) => restarts,
  },
  {
    name: 'clusterd_worker_memory_replacements_total',
    help: 'Times this worker id was replaced for --max-memory (a planned replacement, not in clusterd_worker_restarts_total), since the master started (or scaled up to the id).',
    value: ({ memoryReplacements }) => memoryReplacements,
  },
  {
    name: 'clusterd_worker_blocks_total',
    help: 'Times this worker id\'s event loop was caught blocked past --report-blocked (or the watchdog threshold), since the master started (or scaled up to the id).',
    value: ({ blocks }) => blocks,
  },
];

/**
 * The master process's own figures, under the names every Prometheus client library gives them (so the
 * usual process dashboards and alerts work on the master as on any other target), with the Node heap
 * beside them as clusterd_master_*, mirroring the workers' clusterd_worker_memory_heap_*: prom-client's
 * nodejs_* names would half-fill a namespace whose dashboards expect some twenty more series.
 * No label: the workers' figures are clusterd_worker_* families, so no series of theirs can clash.
 */
const PROCESS_FAMILIES: readonly { name: string; type: MetricType; help: string; value: (own: ProcessMetrics) => number | undefined }[] = [
  { name: 'process_cpu_seconds_total', type: 'counter', help: 'Total user and system CPU time spent in seconds.', value: (own) => own.cpuSeconds },
  { name: 'process_resident_memory_bytes', type: 'gauge', help: 'Resident memory size in bytes.', value: (own) => own.rss },
  { name: 'process_virtual_memory_bytes', type: 'gauge', help: 'Virtual memory size in bytes.', value: (own) => own.virtualBytes },
  { name: 'process_heap_bytes', type: 'gauge', help: 'Process heap size in bytes.', value: (own) => own.heapBytes },
  { name: 'process_open_fds', type: 'gauge', help: 'Number of open file descriptors.', value: (own) => own.openFds },
  { name: 'process_max_fds', type: 'gauge', help: 'Maximum number of open file descriptors.', value: (own) => own.maxFds },
  { name: 'process_start_time_seconds', type: 'gauge', help: 'Start time of the process since unix epoch in seconds.', value: (own) => own.startTimeSeconds },
  { name: 'clusterd_master_memory_heap_used_bytes', type: 'gauge', help: 'V8 heap in use in the master process, in bytes.', value: (own) => own.heapUsed },
  { name: 'clusterd_master_memory_heap_total_bytes', type: 'gauge', help: 'V8 heap allocated in the master process, in bytes.', value: (own) => own.heapTotal },
];

/**
 * The Prometheus text exposition (format 0.0.4) of one ClusterStatus snapshot, and of `own`, the serving
 * process's figures (the master's; left out when not given, as by tests that render a made-up cluster).
 */
export function renderMetrics(status: ClusterStatus, own?: ProcessMetrics): string {
  return [...collect(status), ...(own ? processFamilies(own) : [])]
    .filter((family) => family.samples.length > 0)
    .map(renderFamily)
    .join('');
}

function collect(status: ClusterStatus): Family[] {
  const single = (name: string, type: MetricType, help: string, value: number, labels: Labels = {}): Family => ({
    name,
    type,
    help,
    samples: [{ labels, value }],
  });
  const info = {
    name: status.name,
    version: VERSION,
    node_version: process.versions.node,
    entry: status.entry,
    balance: status.balance,
    pid: String(status.masterPid),
  };
  // One entry per id (two series with the same labels make the whole scrape invalid). A replacement speaks for its id before its first sample: the sample-based series carry the last
  // sample of the worker it replaced meanwhile, rather than vanish for up to a stats interval.
  const workers = onePerId(status.workers).map((worker) => (worker.sample === null && worker.inherited !== null ? { ...worker, sample: worker.inherited } : worker));
  return [
    single('clusterd_info', 'gauge', 'Constant 1, labelled with the cluster and the clusterd version serving it.', 1, info),
    single('clusterd_master_start_time_seconds', 'gauge', 'Start time of the master since the Unix epoch, in seconds.', ms(status.startedAt)),
    single('clusterd_master_uptime_seconds', 'gauge', 'Time since the master started, in seconds.', ms(status.uptimeMs)),
    single('clusterd_master_stats_interval_seconds', 'gauge', 'How often each worker samples its loop; the per-interval gauges cover this long.', ms(status.statsIntervalMs)),
    single('clusterd_master_workers', 'gauge', 'Workers the master supervises.', status.totals.workers),
    // Blocked ones are out of it (totals.ready leaves them out), as /readyz counts them.
    single('clusterd_master_workers_ready', 'gauge', 'Workers ready to take connections: ready, and their loop not blocked now.', status.totals.ready),
    single('clusterd_master_workers_blocked', 'gauge', 'Ready workers whose event loop is blocked now (silent past a second, or --watchdog): not in clusterd_master_workers_ready.', status.totals.blocked),
    single('clusterd_master_workers_desired', 'gauge', 'Workers asked for (-i, scale); more than clusterd_master_workers while an id waits to be restarted.', status.totals.desired),
    single('clusterd_master_restarts_total', 'counter', 'Workers replaced after an unexpected exit since the master started, all worker ids together (scaled-away ones included).', status.totals.restarts),
    single('clusterd_master_memory_replacements_total', 'counter', 'Workers replaced for --max-memory since the master started, all worker ids together (scaled-away ones included).', status.totals.memoryReplacements),
    ...WORKER_FAMILIES.map(({ name, type, help, samples }) => ({
      name,
      type,
      help,
      samples: workers.flatMap((worker) =>
        samples(worker).map(({ labels, value }) => ({ labels: { worker: String(worker.id), ...labels }, value })),
      ),
    })),
    ...COUNT_FAMILIES.map(({ name, help, value }) => ({
      name,
      type: 'counter' as const,
      help,
      samples: status.counts.map((counts) => ({ labels: { worker: String(counts.id) }, value: value(counts) })),
    })),
  ];
}

/** One family per figure; a figure this platform does not give has no sample, and its family is left out. */
function processFamilies(own: ProcessMetrics): Family[] {
  return PROCESS_FAMILIES.map(({ name, type, help, value }) => {
    const figure = value(own);
    return { name, type, help, samples: figure === undefined ? [] : [{ labels: {}, value: figure }] };
  });
}

export interface MetricsServerOptions {
  host: string;
  /** 0 picks a free port; `address.port` tells which. */
  port: number;
  source: ControlSource;
  /** Errors after the server is listening (an accept failing with EMFILE); they never stop it. */
  onError?: (error: Error) => void;
}

export type MetricsServer = Endpoint;

/** Serves `GET /metrics` on host:port; rejects with a ListenError when the address cannot be bound. */
export function startMetricsServer({ host, port, source, onError }: MetricsServerOptions): Promise<MetricsServer> {
  return startEndpoint({ flag: 'metrics', host, port, onError, serve: (path, response) => serve(path, response, source) });
}

function serve(path: string, response: http.ServerResponse, source: ControlSource): void {
  if (path !== METRICS_PATH) {
    replyText(response, 404, `not found: metrics are served at ${METRICS_PATH}\n`);
    return;
  }
  let body: string;
  try {
    // The process serving /metrics is the master (a test's fake source aside): its own figures are read here.
    const status = source.status();
    body = renderMetrics(status, readProcessMetrics(status.master));
  } catch (error) {
    replyText(response, 500, `cannot render metrics: ${oneLine(error)}\n`);
    return;
  }
  response.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}
