// The counters of /metrics on a running cluster: the master's never go down, whatever scaling does; a
// worker id's series stay while no process holds the id, and go when a scale-down removes the id.
import test from 'ava';
import { fixture, killOnTeardown, startCluster, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';
import { scrape } from '../helpers/requests.js';

test('a scale-down drops the ids it removes, not the master\'s total: an id scaled up again is a new worker, counted from 0', async (t) => {
  const ctl = control(t);
  const name = 'counters-scale';
  const cluster = await startCluster(fixture('crash-route.js'), { instances: 2, flags: ['--name', name, '--metrics', '127.0.0.1:0'], env: ctl.env });
  killOnTeardown(t, cluster.process);
  const url = (await cluster.waitForLine((line) => line.event === 'ready')).metrics as string;

  process.kill(cluster.pids[1]!, 'SIGKILL');
  await waitFor(async () => (await scrape(url)).get('clusterd_worker_restarts_total{worker="2"}') === 1, { timeoutMs: 20_000, what: 'worker 2 restarted once' });
  t.is((await scrape(url)).get('clusterd_master_restarts_total'), 1);

  t.is((await ctl.run(['scale', name, '1'])).exitCode, 0);
  const down = await scrape(url);
  t.is(down.get('clusterd_master_restarts_total'), 1);
  t.false(down.has('clusterd_worker_restarts_total{worker="2"}'), 'worker 2 is no longer the cluster\'s');

  t.is((await ctl.run(['scale', name, '2'])).exitCode, 0);
  const up = await scrape(url);
  t.is(up.get('clusterd_master_restarts_total'), 1);
  t.is(up.get('clusterd_worker_restarts_total{worker="2"}'), 0);
  t.is(up.get('clusterd_worker_restarts_total{worker="1"}'), 0);
  const second = await waitFor(async () => (await ctl.workers(name)).find((worker) => worker.id === 2), { timeoutMs: 20_000, what: 'the new worker 2' });
  t.is(second.restarts, 0);
  // Its own restarts count from there, and the master's total goes on from 1.
  process.kill(second.pid, 'SIGKILL');
  await waitFor(async () => (await scrape(url)).get('clusterd_worker_restarts_total{worker="2"}') === 1, { timeoutMs: 20_000, what: 'the new worker 2 restarted once' });
  t.is((await scrape(url)).get('clusterd_master_restarts_total'), 2);
  await cluster.stop();
});

test('a worker id waiting out its restart backoff keeps its counters in /metrics', async (t) => {
  const ctl = control(t);
  const name = 'counters-backoff';
  const cluster = await startCluster(fixture('crash-route.js'), { instances: 2, flags: ['--name', name, '--metrics', '127.0.0.1:0'], env: ctl.env });
  killOnTeardown(t, cluster.process);
  const url = (await cluster.waitForLine((line) => line.event === 'ready')).metrics as string;
  const pidOf2 = (samples: Map<string, number>): number | undefined => {
    const info = [...samples.keys()].find((key) => key.startsWith('clusterd_worker_info{worker="2"'));
    return info === undefined ? undefined : Number(/pid="(\d+)"/.exec(info)![1]);
  };

  // Each quick crash doubles the wait before worker 2 is forked again (100 ms, 200 ms, ...): kill it until a
  // scrape falls inside one of those waits, when no process holds the id, after a restart was made (a
  // restart counts when it is made: during the first wait there has been none yet).
  const killed = new Set<number>();
  const between = await waitFor(
    async () => {
      const samples = await scrape(url);
      const pid = pidOf2(samples);
      if (pid === undefined) return killed.size >= 2 ? samples : null;
      if (samples.get('clusterd_worker_state{worker="2",state="ready"}') === 1 && !killed.has(pid)) {
        killed.add(pid);
        process.kill(pid, 'SIGKILL');
      }
      return null;
    },
    { timeoutMs: 30_000, what: 'a scrape while worker 2 waits to be restarted' },
  );
  t.true(between.get('clusterd_worker_restarts_total{worker="2"}')! >= 1);
  t.is(between.get('clusterd_worker_blocks_total{worker="2"}'), 0);
  t.is(between.get('clusterd_worker_restarts_total{worker="1"}'), 0);
  await cluster.stop();
});
