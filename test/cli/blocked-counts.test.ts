// A ready worker whose loop is blocked now is counted apart, by every reader alike: `status --json`'s
// totals, `ls --json` and /metrics (as /readyz, test/control/health.test.ts). status and ls said
// 2/2 ready while /metrics and /readyz said 1.
import test from 'ava';
import { fixture, get, startCluster, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';
import { decodeStatus, encodeStatus } from '../../src/control/convert.js';
import { clusterStatus, worker } from '../control/helpers/fake-source.js';
import { scrape } from '../helpers/requests.js';

interface StatusJson {
  workers: { id: number; state: string; blockedMs: number }[];
  totals: { workers: number; ready: number; blocked: number; desired: number };
}


test('a blocked worker is not counted ready by status --json, ls --json or /metrics, and each says it is blocked', async (t) => {
  const ctl = control(t);
  const name = 'blocked-counts';
  // No watchdog: the spinning worker stays blocked (a second of silence reads as blocked) for 10 s.
  const cluster = await startCluster(fixture('busy-route.js'), { instances: 2, flags: ['--name', name, '--watchdog', '0', '--metrics', '127.0.0.1:0'], env: { ...ctl.env, SPIN_MS: '10000' } });
  t.teardown(() => cluster.stop('SIGKILL'));
  const url = cluster.lines.find((line) => line.event === 'ready')!.metrics as string;
  await get(cluster.port, '/spin');

  const status = await waitFor(async () => {
    const result = await ctl.run(['status', name, '--json']);
    const json = JSON.parse(String(result.stdout)) as StatusJson;
    return json.workers.some((worker) => worker.blockedMs > 0) ? json : null;
  }, { timeoutMs: 8000, what: 'a worker blocked in status --json' });
  const blockedId = status.workers.find((worker) => worker.blockedMs > 0)!.id;
  t.like(status.totals, { workers: 2, ready: 1, blocked: 1, desired: 2 });

  const [listed] = JSON.parse(String((await ctl.run(['ls', '--json'])).stdout)) as { ready: number; blocked: number }[];
  t.like(listed, { ready: 1, blocked: 1 });

  const metrics = await scrape(url);
  t.is(metrics.get('clusterd_master_workers_ready'), 1);
  t.is(metrics.get('clusterd_master_workers_blocked'), 1);
  t.is(metrics.get(`clusterd_worker_state{worker="${blockedId}",state="blocked"}`), 1);
  t.is(metrics.get(`clusterd_worker_state{worker="${blockedId}",state="ready"}`), 0);
  t.is(metrics.get(`clusterd_worker_state{worker="${3 - blockedId}",state="ready"}`), 1);
});

test('on the wire, totals.ready counts blocked workers too, as masters older than totals.blocked did: an older client keeps its meaning, a newer one takes them out', (t) => {
  const status = clusterStatus('now', [worker(1), worker(2, { blockedMs: 2500 }), worker(3, { state: 'starting' })]);
  const wire = encodeStatus(status, { history: false });
  t.like(wire.totals, { workers: 3, ready: 2, blocked: 1 });
  t.like(decodeStatus(wire).totals, { workers: 3, ready: 1, blocked: 1 });
  // What a master older than the field sends: every ready worker in `ready`, no `blocked`; counted from the rows.
  const older = encodeStatus(status, { history: false });
  older.totals = { ...older.totals!, blocked: 0 };
  t.like(decodeStatus(older).totals, { workers: 3, ready: 1, blocked: 1 });
  // ... and read as sent, not counted again from the rows (counts the rows would not give).
  const withField = encodeStatus(status, { history: false });
  withField.totals = { ...withField.totals!, ready: 2, blocked: 2 };
  t.like(decodeStatus(withField).totals, { ready: 0, blocked: 2 });
  // A master built between stop 36 and wireTotals: `ready` without the blocked ones already, told by its rows.
  const between = encodeStatus(status, { history: false });
  between.totals = { ...between.totals!, ready: 1, blocked: 1 };
  t.like(decodeStatus(between).totals, { workers: 3, ready: 1, blocked: 1 });
  const none = encodeStatus(clusterStatus('now', [worker(1), worker(2)]), { history: false });
  t.like(none.totals, { ready: 2, blocked: 0 });
  t.like(decodeStatus(none).totals, { ready: 2, blocked: 0 });
});
