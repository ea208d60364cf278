// An app written for node:cluster runs under clusterd as it would under node:cluster or PM2's cluster
// mode: `cluster.isWorker` is true, `cluster.worker` describes the process (its id is clusterd's),
// NODE_APP_INSTANCE is PM2's 0..N-1, and `cluster.worker.disconnect()` drains the worker, which exits
// and is replaced under the same id.
import test from 'ava';
import { fixture, startCluster, waitFor } from '../helpers/cluster.js';
import { getJson, untilEveryWorker, type Answer } from '../helpers/requests.js';

interface WorkerAnswer extends Answer {
  id: number;
  instance: string;
  connected: boolean;
  dead: boolean;
  ownProcess: boolean;
}

test('cluster.isWorker and cluster.worker; disconnect() drains the worker, which is replaced', async (t) => {
  const cluster = await startCluster(fixture('cluster-worker.js'));
  t.teardown(() => cluster.stop());
  const answers = await untilEveryWorker(() => getJson<WorkerAnswer>(cluster.port), cluster.pids);
  const seen = [...answers.values()].map(({ id, instance, connected, dead, ownProcess }) => ({ id, instance, connected, dead, ownProcess }));
  t.deepEqual(
    seen.sort((a, b) => a.id - b.id),
    [
      { id: 1, instance: '0', connected: true, dead: false, ownProcess: true },
      { id: 2, instance: '1', connected: true, dead: false, ownProcess: true },
    ],
  );

  const leaving = await getJson<Answer & { disconnecting: boolean }>(cluster.port, '/disconnect');
  t.true(leaving.disconnecting);
  const id = answers.get(leaving.pid)!.id;
  const exit = await cluster.waitForLine((line) => line.event === 'worker-exit' && line.worker === id);
  // Its 'disconnect' came first, as under node:cluster.
  const said = cluster.lines.findIndex((line) => line.message === `cluster.worker ${id} emitted disconnect`);
  t.true(said !== -1 && said < cluster.lines.indexOf(exit), 'cluster.worker emitted disconnect before the exit');
  t.regex(exit.message, new RegExp(`pid ${leaving.pid}\\) exited with code 0`));
  const replacement = await waitFor(
    async () => {
      const answer = await getJson<WorkerAnswer>(cluster.port);
      return cluster.pids.includes(answer.pid) ? null : answer;
    },
    { what: 'an answer from the replacement', intervalMs: 1 },
  );
  t.is(replacement.id, id, 'the replacement keeps the id');
  t.is(replacement.instance, String(id - 1));
});
