// Issue 11: no process outlives the cluster. Every worker leads a process group of its own, and the
// app's children end with their worker: when it stops gracefully, when it dies, and when the
// master is killed with SIGKILL.
import test from 'ava';
import { fixture, isRunning, killOnTeardown, startCluster, waitFor } from '../helpers/cluster.js';
import { getJson, untilEveryWorker, type Answer } from '../helpers/requests.js';

interface Family extends Answer {
  worker: number;
  children: number[];
}

async function childrenOf(port: number, pids: readonly number[]): Promise<Map<number, Family>> {
  return untilEveryWorker(() => getJson<Family>(port), pids, { what: 'every worker and its children' });
}

function cleanUp(t: { teardown(fn: () => void): void }, pids: () => number[]): void {
  t.teardown(() => {
    for (const pid of pids()) if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  });
}

test('a graceful stop ends the app\'s children with their workers', async (t) => {
  const cluster = await startCluster(fixture('spawns-children.js'), { instances: 2 });
  killOnTeardown(t, cluster.process);
  const answers = await childrenOf(cluster.port, cluster.pids);
  const children = [...answers.values()].flatMap((answer) => answer.children);
  cleanUp(t, () => children);
  t.is(children.length, 2);
  t.true(children.every(isRunning));
  t.is(await cluster.stop('SIGTERM'), 0);
  t.deepEqual(children.filter(isRunning), []);
});

test('a worker that dies takes its children with it; the others keep theirs', async (t) => {
  const cluster = await startCluster(fixture('spawns-children.js'), { instances: 2 });
  killOnTeardown(t, cluster.process);
  const answers = [...(await childrenOf(cluster.port, cluster.pids)).values()];
  cleanUp(t, () => answers.flatMap((answer) => answer.children));
  const [victim, survivor] = answers;
  process.kill(victim!.pid, 'SIGKILL');
  await cluster.waitForLine((line) => line.event === 'worker-exit' && line.message.includes(`(pid ${victim!.pid})`));
  await waitFor(() => victim!.children.every((pid) => !isRunning(pid)), { what: 'the dead worker\'s children to end' });
  t.true(survivor!.children.every(isRunning), 'the other worker\'s children live on');
});

test('SIGKILL of the master ends every worker and every child they started', async (t) => {
  const cluster = await startCluster(fixture('spawns-children.js'), { instances: 2 });
  killOnTeardown(t, cluster.process);
  const answers = [...(await childrenOf(cluster.port, cluster.pids)).values()];
  const everyone = [...cluster.pids, ...answers.flatMap((answer) => answer.children)];
  cleanUp(t, () => everyone);
  t.true(everyone.every(isRunning));
  process.kill(cluster.masterPid, 'SIGKILL');
  await waitFor(() => everyone.every((pid) => !isRunning(pid)), { what: 'workers and children to end', timeoutMs: 5000 });
  t.pass();
});
