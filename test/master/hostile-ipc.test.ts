// Issue 11: an app that sends the master malformed look-alikes of clusterd's messages (a listen
// without a query, a stats sample that is empty, a listen for a unix path with a port and one of
// the master's descriptors) changes nothing: the master stays up, status, ls and /metrics answer,
// no bad sample enters the history, and each worker's garbage is logged once, not once per message.
import test from 'ava';
import { existsSync } from 'node:fs';
import { fixture, get, isRunning, startCluster, waitFor } from '../helpers/cluster.js';
import { control, type WorkerJson } from '../helpers/control.js';
import { getJson, untilEveryWorker } from '../helpers/requests.js';

test('malformed protocol messages from the app are dropped and logged once per worker', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('hostile-ipc.js'), {
    instances: 2,
    flags: ['--name', 'hostile', '--metrics', '127.0.0.1:0', '--max-memory', '1G', '--stats-interval', '200ms'],
    env: ctl.env,
  });
  t.teardown(() => cluster.stop('SIGKILL'));
  const metricsUrl = new URL(String(cluster.lines.find((line) => line.event === 'ready')!.metrics));

  await untilEveryWorker(() => getJson(cluster.port, '/attack'), cluster.pids, { what: 'both workers attacked' });
  const logged = await cluster.waitForLine((line) => line.event === 'malformed-message');
  t.log(logged.message);

  // Everything still works, with real samples only: status answers at once, and every worker's
  // sample, once one has come, is a real one (the empty ones never entered the history).
  const status = await ctl.run(['status', 'hostile', '--json']);
  t.is(status.exitCode, 0, String(status.stderr));
  t.deepEqual((JSON.parse(String(status.stdout)) as { workers: WorkerJson[] }).workers.map((worker) => worker.pid).sort(), [...cluster.pids].sort());
  const workers = await waitFor(
    async () => {
      const current = await ctl.workers('hostile');
      return current.every((worker) => worker.rss !== null) ? current : null;
    },
    { what: 'a sample from every worker' },
  );
  for (const worker of workers) t.true(typeof worker.rss === 'number' && worker.rss > 0, `rss ${worker.rss}`);
  const listed = await ctl.run(['ls', '--json']);
  t.is(listed.exitCode, 0);
  t.true(String(listed.stdout).includes('"hostile"'));
  const metrics = await get(Number(metricsUrl.port), '/metrics');
  t.is(metrics.status, 200);
  t.is((await get(cluster.port)).status, 200);
  t.true(isRunning(cluster.masterPid));
  t.false(existsSync('/tmp/evil.sock'), 'the master bound no unix socket for the app');

  // 400 malformed messages per worker, one log line each (the next may come a minute later).
  const lines = cluster.lines.filter((line) => line.event === 'malformed-message');
  t.deepEqual(lines.map((line) => line.worker).sort(), [1, 2]);
  t.false(cluster.lines.some((line) => line.event === 'worker-exit' || line.event === 'fatal'));
});
