import test from 'ava';
import http from 'node:http';
import { ListenError, UsageError } from '../../src/errors.js';
import { ExitCode } from '../../src/exit-codes.js';
import { METRICS_CONTENT_TYPE, renderMetrics, startMetricsServer, type MetricsServer } from '../../src/control/metrics.js';
import type { LoopSample } from '../../src/loop/types.js';
import type { ProcessMetrics } from '../../src/system/own-usage.js';
import type { ClusterStatus, ControlSource, WorkerStatus } from '../../src/master/status.js';
import { countsOf } from './helpers/fake-source.js';
import { parsePrometheus, promtool, validate } from './helpers/exposition.js';

// ---- the fake cluster: worker 1 blocks its loop, worker 2 is healthy -------------------------------------------

const NOW = 1_750_000_000_000;

function sample(overrides: Partial<LoopSample>): LoopSample {
  return {
    time: NOW - 250,
    intervalMs: 1000,
    lag: { mean: 1.2, p50: 1.05, p90: 1.4, p99: 3.1, max: 4.75 },
    elu: 0.05,
    loop: { iterationsPerSec: 950, eventsPerSec: 1200, eventsWaiting: 0 },
    cpu: 6.5,
    memory: { rss: 61_440_000, heapUsed: 9_000_000, heapTotal: 12_000_000, external: 1_500_000, arrayBuffers: 20_000 },
    resources: { TCPServerWrap: 1, TCPSocketWrap: 3, Timeout: 2 },
    http: { rps: 410.5, requests: 411, inflight: 2, connections: 7 },
    ...overrides,
  };
}

function worker(id: number, overrides: Partial<WorkerStatus> = {}): WorkerStatus {
  return {
    id,
    pid: 4000 + id,
    state: 'ready',
    generation: 1,
    startedAt: NOW - 60_000,
    uptimeMs: 60_000,
    restarts: 0,
    memoryReplacements: 0,
    sample: sample({}),
    inherited: null,
    history: [],
    blockedSites: [],
    blocks: 0,
    blockedMs: 0,
    ...overrides,
  };
}

const blocked = sample({
  lag: { mean: 41.3, p50: 1.2, p90: 180.25, p99: 212.5, max: 230.125 },
  elu: 0.93,
  cpu: 87.5,
  loop: null,
  http: { rps: 12, requests: 12_345, inflight: 5, connections: 9 },
});

// Quotes, a backslash and a newline in label values: the exposition must escape all three.
const NAME = 'shop "eu"\\blue\nline2';
const ENTRY = 'C:\\srv\\app "main".ts';

function fakeStatus(workers: WorkerStatus[] = [worker(1, { sample: blocked, restarts: 2, pid: 4242 }), worker(2)]): ClusterStatus {
  return {
    name: NAME,
    masterPid: 4000,
    startedAt: NOW - 90_000,
    uptimeMs: 90_000,
    entry: ENTRY,
    balance: 'round-robin',
    statsIntervalMs: 1000,
    workers,
    totals: { workers: workers.length, ready: workers.filter((w) => w.state === 'ready' && w.blockedMs === 0).length, blocked: workers.filter((w) => w.blockedMs > 0).length, desired: 3, rps: 422.5, inflight: 7, connections: 16, rss: 122_880_000, restarts: 2, memoryReplacements: 1 },    addresses: ['0.0.0.0:8080'],
    counts: countsOf(workers),
    waiting: [],
    master: { rss: 45_000_000, heapUsed: 8_000_000, heapTotal: 11_000_000, cpuSeconds: 3.5 },
    stopTerms: { graceMs: 10_000 },
  };
}

function fakeSource(status: () => ClusterStatus): ControlSource & { calls: number } {
  const source = {
    calls: 0,
    status() {
      source.calls++;
      return status();
    },
    onChange: () => () => {},
  };
  return source;
}

// ---- reading the exposition back -------------------------------------------------------------------------------

/** Every sample as `name{label="value",...}` (labels sorted) -> number, read back by the JS parser. */
function values(text: string): Map<string, number> {
  const map = new Map<string, number>();
  for (const family of parsePrometheus(text)) {
    for (const { value, labels = {} } of family.metrics) {
      map.set(key(family.name, labels), Number(value));
    }
  }
  return map;
}

function key(name: string, labels: Record<string, string> = {}): string {
  const sorted = Object.keys(labels).sort().map((label) => `${label}=${JSON.stringify(labels[label])}`);
  return `${name}{${sorted.join(',')}}`;
}

function read(map: Map<string, number>, name: string, labels: Record<string, string> = {}): number | undefined {
  return map.get(key(name, labels));
}

// ---- a plain HTTP client without keep-alive -------------------------------------------------------------------

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, { method = 'GET', path = '/metrics' } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function withServer(source: ControlSource, run: (server: MetricsServer) => Promise<void>): Promise<void> {
  const server = await startMetricsServer({ host: '127.0.0.1', port: 0, source });
  try {
    await run(server);
  } finally {
    await server.close();
  }
}

// ---- tests ----------------------------------------------------------------------------------------------------

test('the validators reject a broken exposition (they cannot pass silently)', (t) => {
  const broken = [
    'garbage{ 1\n',
    '# HELP a_restarts restarts\n# TYPE a_restarts counter\na_restarts 1\n',
    '# HELP a x\n# TYPE a gauge\na{worker="1"} 1\na{worker="1"} 2\n',
    '# HELP a x\n# TYPE a gauge\na{worker="1} 1\n',
  ];
  for (const text of broken) {
    const { problems } = validate(text);
    t.true(problems.length > 0, `accepted: ${JSON.stringify(text)}`);
  }
  const tool = promtool('garbage{ 1\n');
  if (tool.available) t.true(tool.problems.length > 0);
});

test('a scrape over HTTP is valid exposition format 0.0.4', async (t) => {
  const source = fakeSource(() => fakeStatus());
  await withServer(source, async ({ address }) => {
    const reply = await request(address.port);
    t.is(reply.status, 200);
    t.is(reply.headers['content-type'], METRICS_CONTENT_TYPE);
    t.is(reply.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    const { by, problems } = validate(reply.body);
    if (!by.includes('promtool')) {
      t.log('promtool not installed (scripts/ci-deps.sh installs it): validated with parse-prometheus-text-format and the line lint only');
    }
    t.deepEqual(problems, [], reply.body);
    t.is(source.calls, 1);
  });
});

test('worker figures are carried in Prometheus units, labelled by worker id', (t) => {
  const text = renderMetrics(fakeStatus());
  const v = values(text);
  const w1 = { worker: '1' };
  const w2 = { worker: '2' };

  // Lag: milliseconds in the sample, seconds in the exposition.
  t.is(read(v, 'clusterd_worker_event_loop_lag_p99_seconds', w1), blocked.lag.p99 / 1000);
  t.is(read(v, 'clusterd_worker_event_loop_lag_p99_seconds', w1), 0.2125);
  t.is(read(v, 'clusterd_worker_event_loop_lag_p50_seconds', w1), blocked.lag.p50 / 1000);
  t.is(read(v, 'clusterd_worker_event_loop_lag_p90_seconds', w1), blocked.lag.p90 / 1000);
  t.is(read(v, 'clusterd_worker_event_loop_lag_mean_seconds', w1), blocked.lag.mean / 1000);
  t.is(read(v, 'clusterd_worker_event_loop_lag_max_seconds', w1), blocked.lag.max / 1000);
  t.true(read(v, 'clusterd_worker_event_loop_lag_p99_seconds', w1)! >= 0.15);
  t.is(read(v, 'clusterd_worker_event_loop_lag_p99_seconds', w2), 0.0031);
  t.true(read(v, 'clusterd_worker_event_loop_lag_p99_seconds', w2)! < 0.02);

  t.is(read(v, 'clusterd_worker_event_loop_utilization_ratio', w1), 0.93);
  t.is(read(v, 'clusterd_worker_cpu_ratio', w1), 0.875);
  t.is(read(v, 'clusterd_worker_cpu_ratio', w2), 0.065);
  t.is(read(v, 'clusterd_worker_memory_rss_bytes', w2), 61_440_000);
  t.is(read(v, 'clusterd_worker_memory_heap_used_bytes', w2), 9_000_000);
  t.is(read(v, 'clusterd_worker_memory_heap_total_bytes', w2), 12_000_000);
  t.is(read(v, 'clusterd_worker_memory_external_bytes', w2), 1_500_000);
  t.is(read(v, 'clusterd_worker_memory_array_buffers_bytes', w2), 20_000);
  t.is(read(v, 'clusterd_worker_http_requests_per_second', w1), 12);
  t.is(read(v, 'clusterd_worker_http_requests_per_second', w2), 410.5);
  t.is(read(v, 'clusterd_worker_http_requests_total', w1), 12_345);
  t.is(read(v, 'clusterd_worker_http_requests_total', w2), 411);
  t.is(read(v, 'clusterd_worker_http_requests_in_flight', w1), 5);
  t.is(read(v, 'clusterd_worker_http_connections', w1), 9);
  t.is(read(v, 'clusterd_worker_restarts_total', w1), 2);
  t.is(read(v, 'clusterd_worker_restarts_total', w2), 0);
  t.is(read(v, 'clusterd_worker_uptime_seconds', w1), 60);
  t.is(read(v, 'clusterd_worker_start_time_seconds', w1), (NOW - 60_000) / 1000);
  t.is(read(v, 'clusterd_worker_last_sample_timestamp_seconds', w1), (NOW - 250) / 1000);
  t.is(read(v, 'clusterd_worker_generation', w1), 1);
  t.is(read(v, 'clusterd_worker_info', { worker: '1', pid: '4242' }), 1);
  t.is(read(v, 'clusterd_worker_active_resources', { worker: '2', type: 'TCPSocketWrap' }), 3);

  // uvMetricsInfo: worker 2 has it, worker 1's Node (in the fake) does not, so its series are absent, not 0.
  t.is(read(v, 'clusterd_worker_event_loop_iterations_per_second', w2), 950);
  t.is(read(v, 'clusterd_worker_event_loop_events_per_second', w2), 1200);
  t.is(read(v, 'clusterd_worker_event_loop_events_waiting', w2), 0);
  t.false(v.has(key('clusterd_worker_event_loop_iterations_per_second', w1)));

  // State as a state set: exactly one 1 per worker.
  t.is(read(v, 'clusterd_worker_state', { worker: '1', state: 'ready' }), 1);
  t.is(read(v, 'clusterd_worker_state', { worker: '1', state: 'starting' }), 0);
  t.is(read(v, 'clusterd_worker_state', { worker: '1', state: 'stopping' }), 0);
  t.is(read(v, 'clusterd_worker_state', { worker: '1', state: 'exited' }), 0);

  // Label cardinality: every per-worker series carries `worker`, and only the info/state/resources families
  // carry one more label.
  for (const family of parsePrometheus(text).filter((f) => f.name.startsWith('clusterd_worker_'))) {
    for (const { labels = {} } of family.metrics) {
      t.true(['1', '2'].includes(labels.worker ?? ''), `${family.name} without a worker label`);
      const extra = Object.keys(labels).filter((label) => label !== 'worker');
      const allowed = { clusterd_worker_info: ['pid'], clusterd_worker_state: ['state'], clusterd_worker_active_resources: ['type'] }[family.name] ?? [];
      t.deepEqual(extra, allowed, family.name);
    }
  }
});

test('master figures, the info metric and label escaping', (t) => {
  const text = renderMetrics(fakeStatus());
  const v = values(text);
  t.is(read(v, 'clusterd_master_uptime_seconds'), 90);
  t.is(read(v, 'clusterd_master_start_time_seconds'), (NOW - 90_000) / 1000);
  t.is(read(v, 'clusterd_master_stats_interval_seconds'), 1);
  t.is(read(v, 'clusterd_master_workers'), 2);
  t.is(read(v, 'clusterd_master_workers_ready'), 2);
  t.is(read(v, 'clusterd_master_restarts_total'), 2);

  const info = parsePrometheus(text).find((f) => f.name === 'clusterd_info');
  const labels = info?.metrics[0]?.labels;
  t.is(labels?.name, NAME);
  t.is(labels?.entry, ENTRY);
  t.is(labels?.balance, 'round-robin');
  t.is(labels?.pid, '4000');
  t.regex(labels?.version ?? '', /^\d+\.\d+\.\d+/);
  t.is(labels?.node_version, process.versions.node);
  // The raw line, escaped as the format says: \\ for a backslash, \" for a quote, \n for a newline.
  t.true(text.includes(String.raw`name="shop \"eu\"\\blue\nline2"`));
  t.true(text.includes(String.raw`entry="C:\\srv\\app \"main\".ts"`));
});

test('each family is listed once, with HELP and TYPE, counters end in _total', (t) => {
  const text = renderMetrics(fakeStatus());
  const families = parsePrometheus(text);
  const names = families.map((f) => f.name);
  t.deepEqual(names, [...new Set(names)]);
  for (const family of families) {
    t.not(family.help, '', family.name);
    t.true(['GAUGE', 'COUNTER'].includes(family.type), family.name);
    t.is(family.type === 'COUNTER', family.name.endsWith('_total'), family.name);
  }
  t.deepEqual(
    names.filter((name) => name.endsWith('_total')),
    [
      'clusterd_master_restarts_total',
      'clusterd_master_memory_replacements_total',
      'clusterd_worker_http_requests_total',
      'clusterd_worker_restarts_total',
      'clusterd_worker_memory_replacements_total',
      'clusterd_worker_blocks_total',
    ],
  );
});

test('a worker without a sample yet has its state but no loop figures; the output stays valid', (t) => {
  const status = fakeStatus([worker(1), worker(2, { state: 'starting', sample: null, uptimeMs: 40 })]);
  const text = renderMetrics(status);
  t.deepEqual(validate(text).problems, []);
  const v = values(text);
  t.is(read(v, 'clusterd_worker_state', { worker: '2', state: 'starting' }), 1);
  t.is(read(v, 'clusterd_worker_uptime_seconds', { worker: '2' }), 0.04);
  t.is(read(v, 'clusterd_worker_event_loop_lag_p99_seconds', { worker: '1' }), 0.0031);
  const perWorker2 = [...v.keys()].filter((k) => k.includes('worker="2"')).map((k) => k.slice(0, k.indexOf('{')));
  t.deepEqual(
    [...new Set(perWorker2)].sort(),
    [
      'clusterd_worker_blocks_total',
      'clusterd_worker_event_loop_blocked_seconds',
      'clusterd_worker_generation',
      'clusterd_worker_info',
      'clusterd_worker_memory_replacements_total',
      'clusterd_worker_restarts_total',
      'clusterd_worker_start_time_seconds',
      'clusterd_worker_state',
      'clusterd_worker_uptime_seconds',
    ],
  );
});

test('no workers at all: master families only, still valid', (t) => {
  const text = renderMetrics(fakeStatus([]));
  t.deepEqual(validate(text).problems, []);
  t.false(text.includes('clusterd_worker_'));
  t.is(read(values(text), 'clusterd_master_workers'), 0);
});

test('two processes under one worker id (a restart, a reload): the one serving is exported, the old until the new is ready', (t) => {
  const later = NOW - 2_000;
  const cases: [string, WorkerStatus, WorkerStatus, number][] = [
    // A restart: same generation; the old worker serves while its replacement boots.
    ['restart, booting', worker(1, { pid: 5001 }), worker(1, { pid: 5002, state: 'starting', startedAt: later, sample: null }), 5001],
    ['restart, replaced', worker(1, { pid: 5001, state: 'stopping' }), worker(1, { pid: 5002, startedAt: later }), 5002],
    // A reload: the new generation, booting, then serving.
    ['reload, booting', worker(1, { pid: 5001 }), worker(1, { pid: 5002, generation: 2, state: 'starting', startedAt: later, sample: null }), 5001],
    ['reload, replaced', worker(1, { pid: 5001, state: 'stopping' }), worker(1, { pid: 5002, generation: 2, startedAt: later }), 5002],
    // Neither serves: the old one still drains what it took.
    ['old draining, new booting', worker(1, { pid: 5001, state: 'stopping' }), worker(1, { pid: 5002, generation: 2, state: 'starting', startedAt: later, sample: null }), 5001],
    // Both ready for a moment: the newer.
    ['both ready', worker(1, { pid: 5001 }), worker(1, { pid: 5002, startedAt: later }), 5002],
  ];
  for (const [what, old, fresh, pid] of cases) {
    for (const workers of [[old, fresh], [fresh, old]]) {
      const text = renderMetrics(fakeStatus(workers));
      t.deepEqual(validate(text).problems, [], what);
      const v = values(text);
      const chosen = pid === old.pid ? old : fresh;
      t.is(read(v, 'clusterd_worker_info', { worker: '1', pid: String(pid) }), 1, what);
      t.false(v.has(key('clusterd_worker_info', { worker: '1', pid: String(pid === old.pid ? fresh.pid : old.pid) })), what);
      t.is(read(v, 'clusterd_worker_state', { worker: '1', state: chosen.state }), 1, what);
      t.is(read(v, 'clusterd_worker_generation', { worker: '1' }), chosen.generation, what);
      t.is(read(v, 'clusterd_worker_memory_rss_bytes', { worker: '1' }), chosen.sample?.memory.rss, what);
    }
  }
});

test('an id no process holds (waiting out its restart backoff) keeps its counters, and only them', (t) => {
  const status = fakeStatus([worker(1)]);
  const text = renderMetrics({ ...status, counts: [{ id: 1, restarts: 0, memoryReplacements: 0, blocks: 0 }, { id: 2, restarts: 4, memoryReplacements: 2, blocks: 3 }] });
  t.deepEqual(validate(text).problems, []);
  const v = values(text);
  t.is(read(v, 'clusterd_worker_restarts_total', { worker: '2' }), 4);
  t.is(read(v, 'clusterd_worker_blocks_total', { worker: '2' }), 3);
  t.is(read(v, 'clusterd_worker_memory_replacements_total', { worker: '2' }), 2);
  t.is(read(v, 'clusterd_worker_restarts_total', { worker: '1' }), 0);
  t.deepEqual([...v.keys()].filter((name) => name.includes('worker="2"')).sort(), [
    key('clusterd_worker_blocks_total', { worker: '2' }),
    key('clusterd_worker_memory_replacements_total', { worker: '2' }),
    key('clusterd_worker_restarts_total', { worker: '2' }),
  ]);
});

test('non-finite figures are written as NaN, +Inf and -Inf', (t) => {
  const odd = sample({ lag: { mean: Number.NaN, p50: 1, p90: 2, p99: Infinity, max: Infinity }, elu: -Infinity });
  const text = renderMetrics(fakeStatus([worker(1, { sample: odd })]));
  t.deepEqual(validate(text).problems, []);
  t.true(text.includes('clusterd_worker_event_loop_lag_mean_seconds{worker="1"} NaN\n'));
  t.true(text.includes('clusterd_worker_event_loop_lag_p99_seconds{worker="1"} +Inf\n'));
  t.true(text.includes('clusterd_worker_event_loop_utilization_ratio{worker="1"} -Inf\n'));
});

test('every scrape reads a fresh snapshot from the source', async (t) => {
  let p99 = 10;
  const source = fakeSource(() => fakeStatus([worker(1, { sample: sample({ lag: { mean: 1, p50: 1, p90: 2, p99, max: 20 } }) })]));
  await withServer(source, async ({ address }) => {
    t.is(read(values((await request(address.port)).body), 'clusterd_worker_event_loop_lag_p99_seconds', { worker: '1' }), 0.01);
    p99 = 175;
    t.is(read(values((await request(address.port)).body), 'clusterd_worker_event_loop_lag_p99_seconds', { worker: '1' }), 0.175);
    t.is(source.calls, 2);
  });
});

test('only GET and HEAD /metrics are served', async (t) => {
  const source = fakeSource(() => fakeStatus());
  await withServer(source, async ({ address }) => {
    const withQuery = await request(address.port, { path: '/metrics?name[]=up' });
    t.is(withQuery.status, 200);

    const head = await request(address.port, { method: 'HEAD' });
    t.is(head.status, 200);
    t.is(head.body, '');
    t.is(head.headers['content-type'], METRICS_CONTENT_TYPE);

    for (const path of ['/', '/metrics/', '/metricsx', '/favicon.ico']) {
      t.is((await request(address.port, { path })).status, 404, path);
    }
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const reply = await request(address.port, { method });
      t.is(reply.status, 405, method);
      t.is(reply.headers.allow, 'GET, HEAD');
    }
    t.is(source.calls, 2); // the GET with a query string and the HEAD
  });
});

test('a source that throws gives a 500, and the server keeps serving', async (t) => {
  let fail = true;
  const source = fakeSource(() => {
    if (fail) throw new Error('snapshot unavailable');
    return fakeStatus();
  });
  await withServer(source, async ({ address }) => {
    const reply = await request(address.port);
    t.is(reply.status, 500);
    t.regex(reply.body, /snapshot unavailable/);
    fail = false;
    t.is((await request(address.port)).status, 200);
  });
});

test('a port in use rejects with a ListenError naming host:port', async (t) => {
  const source = fakeSource(() => fakeStatus());
  await withServer(source, async ({ address }) => {
    const error = await t.throwsAsync(startMetricsServer({ host: '127.0.0.1', port: address.port, source }), { instanceOf: ListenError });
    t.is(error?.code, 'ERR_CLUSTERD_LISTEN');
    t.is(error?.exitCode, ExitCode.LISTEN_FAILED);
    t.is(error?.message, `cannot serve metrics on 127.0.0.1:${address.port}: address already in use`);
    t.is((error?.cause as NodeJS.ErrnoException | undefined)?.code, 'EADDRINUSE');
  });
});

test('an invalid port is a usage error naming the option and the value', async (t) => {
  const source = fakeSource(() => fakeStatus());
  for (const port of [-1, 65_536, 1.5, Number.NaN]) {
    const error = await t.throwsAsync(startMetricsServer({ host: '127.0.0.1', port, source }), { instanceOf: UsageError });
    t.is(error?.message, `Expected the \`--metrics\` port to be an integer from 0 to 65535, got \`${port}\``);
  }
  t.is(source.calls, 0);
});

test('close() stops listening even with a keep-alive connection open', async (t) => {
  const server = await startMetricsServer({ host: '127.0.0.1', port: 0, source: fakeSource(() => fakeStatus()) });
  const agent = new http.Agent({ keepAlive: true });
  try {
    const reply = await new Promise<number>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: server.address.port, path: '/metrics', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', reject);
    });
    t.is(reply, 200);
    await server.close();
    const error = await t.throwsAsync(request(server.address.port));
    t.is((error as NodeJS.ErrnoException | undefined)?.code, 'ECONNREFUSED');
  } finally {
    agent.destroy();
  }
});

// ---- the master's own process ---------------------------------------------------------------------------------

const OWN: ProcessMetrics = {
  rss: 52_428_800,
  heapUsed: 7_000_000,
  heapTotal: 10_000_000,
  cpuSeconds: 12.25,
  startTimeSeconds: (NOW - 95_000) / 1000,
  virtualBytes: 1_100_000_000,
  heapBytes: 60_000_000,
  openFds: 31,
  maxFds: 1_048_576,
};

test('the master\'s own figures: the standard process_* series and its Node heap, unlabelled, valid', (t) => {
  const text = renderMetrics(fakeStatus(), OWN);
  t.deepEqual(validate(text).problems, [], text);
  const v = values(text);
  t.is(read(v, 'process_cpu_seconds_total'), 12.25);
  t.is(read(v, 'process_resident_memory_bytes'), 52_428_800);
  t.is(read(v, 'process_virtual_memory_bytes'), 1_100_000_000);
  t.is(read(v, 'process_heap_bytes'), 60_000_000);
  t.is(read(v, 'process_open_fds'), 31);
  t.is(read(v, 'process_max_fds'), 1_048_576);
  t.is(read(v, 'process_start_time_seconds'), (NOW - 95_000) / 1000);
  t.is(read(v, 'clusterd_master_memory_heap_used_bytes'), 7_000_000);
  t.is(read(v, 'clusterd_master_memory_heap_total_bytes'), 10_000_000);
  const families = parsePrometheus(text);
  t.is(families.find((f) => f.name === 'process_cpu_seconds_total')?.type, 'COUNTER');
  // One series each, without labels: nothing a worker's series (clusterd_worker_*, labelled worker) could clash with.
  for (const family of families.filter((f) => f.name.startsWith('process_') || f.name.startsWith('clusterd_master_memory_heap'))) {
    t.is(family.metrics.length, 1, family.name);
    t.deepEqual(family.metrics[0]!.labels ?? {}, {}, family.name);
  }
  const names = families.map((f) => f.name);
  t.deepEqual(names, [...new Set(names)]);
});

test('off Linux (no /proc): only what Node tells, the others left out rather than written as 0', (t) => {
  const { virtualBytes, heapBytes, openFds, maxFds, ...nodeOnly } = OWN;
  t.truthy(virtualBytes && heapBytes && openFds && maxFds);
  const text = renderMetrics(fakeStatus(), nodeOnly);
  t.deepEqual(validate(text).problems, []);
  const v = values(text);
  t.is(read(v, 'process_resident_memory_bytes'), 52_428_800);
  t.is(read(v, 'process_cpu_seconds_total'), 12.25);
  t.is(read(v, 'process_start_time_seconds'), (NOW - 95_000) / 1000);
  for (const name of ['process_virtual_memory_bytes', 'process_heap_bytes', 'process_open_fds', 'process_max_fds']) t.false(text.includes(name), name);
});

test('a scrape carries the serving process\'s own figures', async (t) => {
  const source = fakeSource(() => fakeStatus());
  await withServer(source, async ({ address }) => {
    const v = values((await request(address.port)).body);
    t.true(read(v, 'process_resident_memory_bytes')! > 1024 * 1024);
    t.true(read(v, 'process_cpu_seconds_total')! > 0);
    t.true(read(v, 'process_start_time_seconds')! <= Date.now() / 1000);
    if (process.platform === 'linux') {
      t.true(read(v, 'process_open_fds')! > 3);
      t.true(read(v, 'process_max_fds')! >= read(v, 'process_open_fds')!);
      t.true(read(v, 'process_virtual_memory_bytes')! > read(v, 'process_resident_memory_bytes')!);
    }
  });
});
