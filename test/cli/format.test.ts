// The CLI's text, as pure functions of a ClusterView: units, table, JSON shape, sparklines, colour.
import test from 'ava';
import {
  formatBytes,
  formatDuration,
  formatFraction,
  formatMs,
  formatRate,
  eluLevel,
  outputWidth,
  lagLevel,
  paint,
  printable,
  sparkline,
  table,
  truncate,
  visibleWidth,
} from '../../src/cli/format.js';
import { lsJson, lsLines, statusJson, statusLines, topLines } from '../../src/cli/views.js';
import { frameLine } from '../../src/cli/stack-view.js';
import { frameLine as dashboardFrameLine } from '../../src/dashboard/history.js';
import { loopReport } from '../../src/dashboard/actions.js';
import { loopLines, selfTimeLines } from '../../src/cli/profile-view.js';
import { decodeStatus, encodeStatus } from '../../src/control/convert.js';
import type { ClusterView } from '../../src/control/types.js';
import type { LoopBreakdown } from '../../src/loop/types.js';
import { clusterStatus, sample, twoWorkers, worker } from '../control/helpers/fake-source.js';

const view = (history = true): ClusterView => decodeStatus(encodeStatus(twoWorkers('api'), { history }));
const NOW = Date.UTC(2024, 0, 2, 3, 4, 5);

const durations: [number, string][] = [
  [0, '0s'],
  [999, '0s'],
  [42_000, '42s'],
  [5 * 60_000 + 2_000, '5m02s'],
  [2 * 3_600_000 + 3 * 60_000, '2h03m'],
  [3 * 86_400_000 + 4 * 3_600_000, '3d04h'],
  [-5, '0s'],
];
for (const [ms, text] of durations) test(`formatDuration(${ms}) is ${text}`, (t) => t.is(formatDuration(ms), text));

test('formatBytes uses binary units with three significant digits', (t) => {
  t.is(formatBytes(0), '0 B');
  t.is(formatBytes(512), '512 B');
  t.is(formatBytes(1536), '1.50 KiB');
  t.is(formatBytes(80 * 1024 * 1024), '80.0 MiB');
  t.is(formatBytes(300 * 1024 * 1024), '300 MiB');
  t.is(formatBytes(1.25 * 1024 ** 3), '1.25 GiB');
});

test('lag, rates and fractions', (t) => {
  t.deepEqual([0.42, 3.14159, 210.4].map(formatMs), ['0.42', '3.1', '210']);
  t.deepEqual([0.5, 9.84, 310.5].map(formatRate), ['0.5', '9.8', '311']);
  t.deepEqual([0, 0.123, 0.93, 1].map(formatFraction), ['0%', '12%', '93%', '100%']);
});

test('thresholds: lag p99 yellow from 50 ms and red from 100 ms; ELU from 0.7 and 0.9', (t) => {
  t.deepEqual([0, 49.9, 50, 99.9, 100, 5000].map(lagLevel), ['ok', 'ok', 'warn', 'warn', 'bad', 'bad']);
  t.deepEqual([0, 0.69, 0.7, 0.89, 0.9, 1].map(eluLevel), ['ok', 'ok', 'warn', 'warn', 'bad', 'bad']);
  t.is(paint('210', 'bad', true), '\x1b[1;31m210\x1b[0m');
  t.is(paint('60', 'warn', true), '\x1b[33m60\x1b[0m');
  t.is(paint('2', 'ok', true), '2');
  t.is(paint('210', 'bad', false), '210');
});

test('sparkline: ▁ for nothing up to █ at the scale\'s top, clipped above it', (t) => {
  t.is(sparkline([0, 12.5, 25, 37.5, 50, 62.5, 75, 87.5, 100], 100), '▁▁▂▃▄▅▆▇█');
  t.is(sparkline([1, 1000, -3, Number.NaN], 100), '▁█▁▁');
  t.is(sparkline([5, 5], 0), '▁▁');
  t.is(sparkline([], 10), '');
});

test('table: columns by visible width, right-aligned where asked, no trailing spaces', (t) => {
  const red = paint('210', 'bad', true);
  t.deepEqual(table([['ID', 'LAG', 'STATE'], ['1', red, 'ready'], ['10', '2.5', 'starting']], ['right', 'right', 'left']), [
    'ID  LAG  STATE',
    ` 1  ${red}  ready`,
    '10  2.5  starting',
  ]);
});

test('truncate keeps escape codes whole and resets colour after a cut', (t) => {
  const line = `ab${paint('cdef', 'bad', true)}gh`;
  t.is(visibleWidth(line), 8);
  t.is(truncate(line, 8), line);
  t.is(truncate(line, 4), 'ab\x1b[1;31mcd\x1b[0m');
  t.is(visibleWidth(truncate('▁▂▃▄▅', 3)), 3);
});

test('status --json has the documented shape, units and key order', (t) => {
  const json = statusJson(view());
  t.deepEqual(Object.keys(json), ['name', 'workers', 'masterPid', 'startedAt', 'uptimeMs', 'entry', 'balance', 'addresses', 'statsIntervalMs', 'totals', 'waiting', 'master']);
  t.deepEqual(json.addresses, ['127.0.0.1:3000']);
  // The master's own, in bytes and CPU seconds; not in totals.rss.
  t.deepEqual(json.master, { rss: 41 * 1024 * 1024, heapUsed: 9 * 1024 * 1024, heapTotal: 14 * 1024 * 1024, cpuSeconds: 1.25 });
  t.deepEqual(json.workers[1], {
    id: 2,
    pid: 40_002,
    state: 'ready',
    restarts: 1,
    uptimeMs: 65_000,
    lag: { mean: 40, p50: 3, p90: 120, p99: 210, max: 230 },
    elu: 0.93,
    cpu: 14.5,
    rss: 80 * 1024 * 1024,
    heapUsed: 20 * 1024 * 1024,
    rps: 310.5,
    inflight: 2,
    connections: 14,
    generation: 1,
    lastBlocked: null,
    blockedSites: [],
    blocks: 0,
    blockedMs: 0,
    memoryReplacements: 0,
  });
  t.is(json.name, 'api');
  t.is(json.masterPid, 39_999);
  t.deepEqual(json.totals, { workers: 2, ready: 2, blocked: 0, desired: 2, rps: 621, inflight: 4, connections: 28, rss: 160 * 1024 * 1024, restarts: 1, memoryReplacements: 0 });
});

test('status --json: a worker without a sample has nulls, not zeros', (t) => {
  const json = statusJson(decodeStatus(encodeStatus(clusterStatus('api', [worker(1, { state: 'starting' }, [])]), { history: false })));
  t.like(json.workers[0], { id: 1, state: 'starting', lag: null, elu: null, cpu: null, rss: null, heapUsed: null, rps: null, inflight: null, connections: null });
});

test('status table: with no sample from any worker (stats off, or just started), the summary says `-`, not zeros', (t) => {
  const lines = statusLines(decodeStatus(encodeStatus(clusterStatus('api', [worker(1, { state: 'starting' }, [])]), { history: false })), Infinity);
  t.regex(lines[0]!, /0\/1 ready {2}- req\/s {2}- conns {2}master RSS 41\.0 MiB/);
});

test('a master older than the `master` field: status --json has null for it, the summary line only the workers\' RSS', (t) => {
  const wire = encodeStatus(twoWorkers('api'), { history: false });
  delete wire.master;
  const older = decodeStatus(wire);
  t.is(older.master, null);
  t.is(statusJson(older).master, null);
  t.regex(statusLines(older)[0]!, /28 conns {2}RSS 160 MiB {2}1 restart/);
  t.false(statusLines(older)[0]!.includes('master 41'));
});

test('status table: a summary line, then one row per worker', (t) => {
  t.deepEqual(statusLines(view(false)), [
    'api  master 39999  up 1m10s  2/2 ready  621 req/s  28 conns  RSS 160 MiB + master 41.0 MiB  1 restart  on 127.0.0.1:3000',
    '',
    'ID    PID  STATE  GEN  UPTIME  RESTARTS  REQ/S  CONNS  LAG p50  p99  max  ELU  CPU       RSS',
    ' 1  40001  ready    1   1m05s         0    311     14      1.1  2.5  4.1  12%  15%  80.0 MiB',
    ' 2  40002  ready    1   1m05s         1    311     14      3.0  210  230  93%  15%  80.0 MiB',
  ]);
  const starting = statusLines(decodeStatus(encodeStatus(clusterStatus('api', [worker(1, { state: 'starting' }, [])]), { history: false })));
  t.is(starting.at(-1), ' 1  40001  starting    1   1m05s         0      -      -        -    -    -    -    -    -');
});

test('status and top: a ready worker whose loop is blocked now reads `blocked`, with a line saying for how long and how to see where', (t) => {
  const status = decodeStatus(encodeStatus(clusterStatus('api', [worker(1), worker(2, { blockedMs: 4_249 }), worker(3, { state: 'starting', blockedMs: 2_000 })]), { history: true }));
  const lines = statusLines(status);
  t.regex(lines.find((line) => line.startsWith(' 1 '))!, /^ 1 +40001 +ready /);
  t.regex(lines.find((line) => line.startsWith(' 2 '))!, /^ 2 +40002 +blocked /);
  // A start-up's silence is --listen-timeout's business: the worker is starting, not blocked.
  t.regex(lines.find((line) => line.startsWith(' 3 '))!, /^ 3 +40003 +starting /);
  const note = 'worker 2: its event loop is blocked now, for 4.2 s (`clusterd stack api 2` shows where)';
  t.deepEqual(lines.filter((line) => line.startsWith('worker ')), [note]);
  t.true(topLines(status, { width: Infinity, height: Infinity, colour: false, now: 0 }).includes(note));
  t.is(statusJson(status).workers[1]!.blockedMs, 4_249);
});

test('status and top name a worker id with no process, waiting to be restarted, under the table: it has no row', (t) => {
  const status = decodeStatus(encodeStatus({ ...clusterStatus('api', [worker(1)]), waiting: [{ id: 2, crashes: 3, restartInMs: 2_399.6, blockedSites: [] }] }, { history: true }));
  const line = 'worker 2: no process, waiting to be restarted after 3 crashes in a row, next try in 2.4 s (`clusterd restart api 2` starts it now)';
  t.deepEqual(statusLines(status).filter((each) => each.startsWith('worker ')), [line]);
  t.true(topLines(status, { width: Infinity, height: Infinity, colour: false, now: 0 }).includes(line));
  t.deepEqual(statusJson(status).waiting, [{ id: 2, crashes: 3, restartInMs: 2_400, blockedSites: [] }]);
});

test('ls: name, pid, ready/total workers, uptime, where it listens', (t) => {
  const clusters = [view(false), decodeStatus(encodeStatus({ ...twoWorkers('web'), masterPid: 7, uptimeMs: 3_700_000, addresses: ['[::]:8080', '/run/web.sock'] }, { history: false }))];
  t.deepEqual(lsLines(clusters), [
    'NAME    PID  WORKERS  UPTIME  LISTENING',
    'api   39999      2/2   1m10s  127.0.0.1:3000',
    'web       7      2/2   1h01m  [::]:8080, /run/web.sock',
  ]);
  t.deepEqual(lsJson(clusters)[1], { name: 'web', masterPid: 7, workers: 2, ready: 2, blocked: 0, desired: 2, uptimeMs: 3_700_000, addresses: ['[::]:8080', '/run/web.sock'] });
});

test('status, ls and their --json count the workers asked for, not the processes an id has while it is replaced', (t) => {
  // A restart of worker 2 in a 2-worker cluster: the old worker 2 serves while its replacement boots.
  const restarting = clusterStatus('api', [worker(1), worker(2), worker(2, { pid: 40_102, state: 'starting' }, [])]);
  const view = decodeStatus(encodeStatus({ ...restarting, totals: { ...restarting.totals, desired: 2 } }, { history: false }));
  t.is(view.totals.desired, 2);
  t.regex(statusLines(view)[0]!, / 2\/2 ready /);
  t.like(statusJson(view).totals, { workers: 3, ready: 2, desired: 2 });
  t.like(lsJson([view])[0], { workers: 3, ready: 2, desired: 2 });
  t.is(lsLines([view])[1]!.split(/ +/)[2], '2/2');
  // A master older than the field sends none (0): its worker count stands in.
  const older = decodeStatus(encodeStatus({ ...restarting, totals: { ...restarting.totals, desired: 0 } }, { history: false }));
  t.is(older.totals.desired, 3);
});

/** A cluster whose worker 1 blocks its loop every other sample, worker 2 stays quiet. */
function blockedCluster(): ClusterView {
  const quiet = Array.from({ length: 8 }, (_, i) => sample({ time: i, lag: { mean: 1, p50: 1, p90: 1.5, p99: 2, max: 3 }, elu: 0.1 }));
  const blocked = quiet.map((s, i) => (i % 2 ? sample({ ...s, lag: { mean: 60, p50: 1, p90: 180, p99: 200, max: 210 }, elu: 0.95 }) : s));
  return decodeStatus(encodeStatus(clusterStatus('api', [worker(1, {}, blocked), worker(2, {}, quiet)]), { history: true }));
}

test('top, plain: the table, and a sparkline per worker on a shared scale', (t) => {
  const lines = topLines(blockedCluster(), { width: Infinity, height: Infinity, colour: false, now: NOW });
  t.is(lines[0], 'api  master 39999  up 1m10s  2/2 ready  621 req/s  28 conns  RSS 160 MiB + master 41.0 MiB  on 127.0.0.1:3000  03:04:05');
  t.regex(lines[2]!, /LAG p99, last 60 samples \(top = 200 ms\)$/);
  t.true(lines[3]!.endsWith('  ▁█▁█▁█▁█'), lines[3]);
  t.true(lines[4]!.endsWith('  ▁▁▁▁▁▁▁▁'), lines[4]);
  t.false(lines.join('\n').includes('\x1b'));
  t.false(lines.join('\n').includes('quit'));
});

test('top, live: colours by threshold, fits the terminal, counts the workers it cannot show', (t) => {
  const status = blockedCluster();
  const lines = topLines(status, { width: 200, height: 30, colour: true, now: NOW });
  const worker1 = lines[3]!;
  t.true(worker1.includes('\x1b[1;31m200\x1b[0m'), 'lag p99 red');
  t.true(worker1.includes('\x1b[1;31m95%\x1b[0m'), 'ELU red');
  t.true(worker1.includes('\x1b[1;31m█\x1b[0m'), 'blocked samples red in the sparkline');
  t.false(lines[4]!.includes('\x1b[1;31m'), 'the quiet worker is not highlighted');
  t.is(lines.at(-1), '\x1b[2mq or Ctrl-C: quit\x1b[0m');

  const narrow = topLines(status, { width: 40, height: 30, colour: true, now: NOW });
  t.true(narrow.every((line) => visibleWidth(line) <= 40));
  t.false(narrow.some((line) => line.includes('▁')), 'no room for sparklines');

  const many = decodeStatus(encodeStatus(clusterStatus('big', Array.from({ length: 20 }, (_, i) => worker(i + 1))), { history: true }));
  const short = topLines(many, { width: 200, height: 10, colour: false, now: NOW });
  t.true(short.length <= 10);
  t.true(short.includes('... 16 more workers'), short.join('\n'));
});

/** A cluster as wide as real ones get: 7-digit pids, long states, restarts in the tens, days of uptime, a blocked site deep in a path. */
function wideCluster(): ClusterView {
  const busy = sample({ lag: { mean: 40, p50: 12.5, p90: 150, p99: 1250, max: 4096 }, elu: 0.97, cpu: 101.4, http: { rps: 12_345, requests: 12_345, inflight: 64, connections: 1024 } });
  const workers = [
    worker(1, { pid: 4_194_301, state: 'stopping', generation: 12, restarts: 17, uptimeMs: 3 * 86_400_000 }, [busy]),
    worker(12, { pid: 4_194_302, state: 'starting', generation: 12, restarts: 0, uptimeMs: 5_000 }, []),
  ];
  return decodeStatus(encodeStatus({ ...clusterStatus('payments-api-production', workers), masterPid: 4_194_300, uptimeMs: 3 * 86_400_000 }, { history: true }));
}

test('status fits the width it is given: columns go in the documented order, the summary wraps, nothing passes it', (t) => {
  const status = wideCluster();
  const header = (width: number) => statusLines(status, width).find((line) => line.startsWith('ID'))!.split(/ {2,}/).map((cell) => cell.trim());
  t.deepEqual(header(Infinity), ['ID', 'PID', 'STATE', 'GEN', 'UPTIME', 'RESTARTS', 'REQ/S', 'CONNS', 'LAG p50', 'p99', 'max', 'ELU', 'CPU', 'RSS']);
  t.deepEqual(header(80), ['ID', 'PID', 'STATE', 'RESTARTS', 'REQ/S', 'LAG p50', 'p99', 'max', 'ELU', 'CPU', 'RSS']);
  // When the p50 goes, the LAG label moves on to p99.
  t.deepEqual(header(50), ['ID', 'STATE', 'REQ/S', 'LAG p99', 'max', 'ELU', 'RSS']);
  for (const width of [80, 60, 50]) {
    const lines = statusLines(status, width);
    t.true(lines.every((line) => visibleWidth(line) <= width), `${width}:\n${lines.join('\n')}`);
    t.true(lines.some((line) => /^ {0,2}1 .*stopping/.test(line)) && lines.some((line) => /^12 .*starting/.test(line)), 'every worker keeps its row');
  }
  const summary = statusLines(status, 60).slice(0, 3);
  t.deepEqual(summary, ['payments-api-production  master 4194300  up 3d00h  0/2 ready', '12345 req/s  1024 conns  RSS 80.0 MiB + master 41.0 MiB', '17 restarts  on 127.0.0.1:3000']);
});

test('top at 80 columns: the table shrinks first so that a sparkline still fits', (t) => {
  const lines = topLines(wideCluster(), { width: 80, height: 30, colour: true, now: NOW });
  t.true(lines.every((line) => visibleWidth(line) <= 80), lines.join('\n'));
  t.true(lines.some((line) => line.endsWith('RSS  p99, top 1250 ms')), 'the sparklines\' label, shortened');
  t.true(lines.every((line) => line === line.trimEnd()), 'no trailing spaces');
  t.true(lines.some((line) => line.includes('█')), 'worker 1 has its sparkline');
});

test('plain output is fitted to the terminal, else to COLUMNS, else not at all', (t) => {
  t.is(outputWidth({ isTTY: true, columns: 72 }, {}), 72);
  t.is(outputWidth({ isTTY: true, columns: 72 }, { COLUMNS: '200' }), 72);
  t.is(outputWidth({}, { COLUMNS: '80' }), 80);
  t.is(outputWidth({}, {}), Infinity);
  for (const bad of ['0', '-1', 'wide', '1e3', '']) t.is(outputWidth({}, { COLUMNS: bad }), Infinity, bad);
});

// The app in a worker is not trusted: what it names (a function, a script, a resource type) reaches
// the operator's terminal through status, top, stack, profile and loop, never as control codes.
const HOSTILE = 'evil\u001b]0;PWNED\u0007\u001b[31mred\n  forged line\u009b2J\u202eabc';
const SHOWN = 'evil\\x1b]0;PWNED\\x07\\x1b[31mred\\x0a  forged line\\x9b2J\\u202eabc';

test('printable: control characters, C1 codes and bidi overrides are shown as escapes; other text as it is', (t) => {
  t.is(printable(HOSTILE), SHOWN);
  t.is(printable('parseBig (file:///srv/app/rapport-é.js) 名前'), 'parseBig (file:///srv/app/rapport-é.js) 名前');
});

test('status, top, stack, profile and loop print a worker\'s names with their control characters escaped', (t) => {
  const site = { function: HOSTILE, url: `file:///srv/${HOSTILE}.js`, line: 3, count: 2, maxMs: 300, lastSeen: NOW };
  const status = decodeStatus(encodeStatus(clusterStatus('api', [worker(1, { blockedSites: [site] })]), { history: true }));
  const texts = [
    ...statusLines(status),
    ...topLines(status, { width: Infinity, height: Infinity, colour: false, now: NOW }),
    frameLine({ functionName: HOSTILE, url: `file:///srv/${HOSTILE}.js`, line: 1, column: 2 }),
    ...selfTimeLines([{ functionName: HOSTILE, url: HOSTILE, line: 4, samples: 1, pct: 100 }]),
    ...loopLines(1, {
      durationMs: 1000,
      phases: Object.fromEntries(['timers', 'pending', 'poll', 'check', 'close', 'nextTick', 'microtasks', 'idle'].map((name) => [name, { ms: 1, msPerSec: 1, count: 1 }])) as LoopBreakdown['phases'],
      iterationsPerSec: 10,
      callbacks: [{ type: HOSTILE, function: HOSTILE, url: HOSTILE, line: 5, count: 1, totalMs: 3, maxMs: 3 }],
      overheadPct: 1,
    }),
  ];
  // eslint-disable-next-line no-control-regex -- control characters are what it looks for
  for (const text of texts) t.false(/[\u0000-\u001f\u007f-\u009f\u202e]/.test(text), JSON.stringify(text));
  t.true(texts.some((text) => text.includes(SHOWN)), 'the names are still shown');
  // Every line that names one shows it escaped, whole: status and top (the site), stack, profile, loop (three in one line).
  t.is(texts.filter((text) => text.includes('forged line')).length, texts.filter((text) => text.includes(SHOWN)).length);
  t.true(texts.filter((text) => text.includes(SHOWN)).length >= 5);
});

test('the dashboard shows what a worker names escaped as the CLI does: its stack lines, its sites, its loop callbacks', (t) => {
  const frame = { functionName: HOSTILE, url: `file:///srv/${HOSTILE}.js`, line: 1, column: 2 };
  t.is(dashboardFrameLine(frame), `${SHOWN} (file:///srv/${SHOWN}.js:1:2)`);
  const report = loopReport(1, {
    durationMs: 1000,
    phases: Object.fromEntries(['timers', 'pending', 'poll', 'check', 'close', 'nextTick', 'microtasks', 'idle'].map((name) => [name, { ms: 1, msPerSec: 1, count: 1 }])) as LoopBreakdown['phases'],
    iterationsPerSec: 10,
    callbacks: [{ type: 'Timeout', function: HOSTILE, url: HOSTILE, line: 5, count: 1, totalMs: 3, maxMs: 3 }],
    overheadPct: 1,
  });
  t.like(report.callbacks[0], { function: SHOWN, url: SHOWN });
});

test('status and ls: a blocked worker is out of the ready count, and counted apart', (t) => {
  const status = decodeStatus(encodeStatus(clusterStatus('api', [worker(1), worker(2, { blockedMs: 4_249 }), worker(3, { state: 'starting' }, [])]), { history: false }));
  t.like(status.totals, { ready: 1, blocked: 1 });
  t.regex(statusLines(status)[0]!, / 1\/3 ready, 1 blocked /);
  t.is(lsLines([status])[1], 'api   39999  1/3 (1 blocked)   1m10s  127.0.0.1:3000');
  t.like(lsJson([status])[0], { ready: 1, blocked: 1, desired: 3 });
});

test('status and top: one blocked-site line per worker id, while it has two processes (a restart) or none (waiting to be restarted)', (t) => {
  const sites = (fn: string) => [{ function: fn, url: 'file:///srv/app.js', line: 41, count: 3, maxMs: 212.4, lastSeen: 1_700_000_000_000 }];
  // Worker 1 is replaced while it holds a request (old and new process); worker 2 crashed and waits.
  const restarting = clusterStatus('api', [worker(1, { blockedSites: sites('parseBig') }), worker(1, { pid: 40_101, state: 'starting', blockedSites: sites('parseBig') }, [])]);
  const status = decodeStatus(encodeStatus({ ...restarting, waiting: [{ id: 2, crashes: 2, restartInMs: 400, blockedSites: sites('render') }] }, { history: false }));
  const expected = ['worker 1: 3 blocks, longest 212 ms, in parseBig (file:///srv/app.js:41)', 'worker 2: 3 blocks, longest 212 ms, in render (file:///srv/app.js:41)'];
  t.deepEqual(statusLines(status).filter((line) => / blocks?, longest /.test(line)), expected);
  t.deepEqual(topLines(status, { width: Infinity, height: Infinity, colour: false, now: 0 }).filter((line) => / blocks?, longest /.test(line)), expected);
  t.is(statusJson(status).waiting[0]!.blockedSites[0]!.function, 'render');
});

test('top wraps the notes under its table at the width, as status does, rather than cut them', (t) => {
  const status = decodeStatus(encodeStatus({ ...clusterStatus('api', [worker(1)]), waiting: [{ id: 2, crashes: 7, restartInMs: 15_000, blockedSites: [] }] }, { history: true }));
  const note = (lines: string[]): string[] => lines.slice(lines.findIndex((line) => line.startsWith('worker 2:'))).filter((line) => line.startsWith('worker 2:') || line.startsWith('  '));
  const top = topLines(status, { width: 80, height: 40, colour: false, now: 0 });
  const wrapped = note(top);
  t.true(wrapped.length > 1);
  t.true(wrapped.every((line) => line.length <= 80));
  t.is(wrapped.map((line) => line.trim()).join(' '), 'worker 2: no process, waiting to be restarted after 7 crashes in a row, next try in 15.0 s (`clusterd restart api 2` starts it now)');
  t.deepEqual(wrapped, note(statusLines(status, 80)));
});

test('status and ls show a socket path\'s control characters as escapes: a worker cannot forge a line or send escapes to the terminal', (t) => {
  const status = decodeStatus(encodeStatus(clusterStatus('api', [worker(1)]), { history: false }));
  status.addresses = ['/tmp/evil\nclusterd: api stopped\u001b[31m'];
  const summary = statusLines(status)[0]!;
  t.true(summary.includes('/tmp/evil\\x0aclusterd: api stopped\\x1b[31m'), summary);
  const listed = lsLines([status]).join('\n');
  t.false(listed.split('\n')[1]!.includes('\u001b'), listed);
  t.true(listed.includes('\\x1b[31m'), listed);
});
