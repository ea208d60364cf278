// What the app starts itself: a child it forks runs as it would under node (not as a second
// clusterd worker, nor one by workerId()), and a child that keeps the worker's output open does not
// hold up the worker's exit, its restart, or a stop.
import test from 'ava';
import { once } from 'node:events';
import net from 'node:net';
import { fixture, isAlive, startCluster, waitFor } from '../helpers/cluster.js';
import { getJson, type Answer } from '../helpers/requests.js';

interface ForkReport extends Answer {
  pid: number;
  workerId: number | null;
  child: { port: number; execArgv: string[]; isPrimary: boolean; pid: number; pgrp: number; workerId: number | null };
  heard: unknown[];
  aliveAfterDisconnect: boolean;
}

test("a child the app forks runs as under node: the app's own flags, its own listen, its channel the app's, in the worker's group", async (t) => {
  const cluster = await startCluster(fixture('forks-a-child.js'), { instances: 1, flags: ['--node-arg=--max-old-space-size=200'] });
  t.teardown(() => cluster.stop());
  const report = await getJson<ForkReport>(cluster.port, '/fork');
  // fork() passes on process.execArgv: the app's flag, not the runtime's --import or the inspector's.
  t.deepEqual(report.child.execArgv, ['--max-old-space-size=200']);
  t.true(report.child.isPrimary);
  // Its server is its own, on a port of its own (a clusterd listen would have asked the worker's parent... its channel).
  const socket = net.connect(report.child.port, '127.0.0.1');
  const [data] = (await once(socket, 'data')) as [Buffer];
  t.is(String(data), 'child\n');
  socket.destroy();
  // The parent heard its child, and only its child.
  t.deepEqual(report.heard.map((message) => Object.keys(message as object).sort()), [['execArgv', 'isPrimary', 'pgrp', 'pid', 'port', 'workerId']]);
  t.true(report.aliveAfterDisconnect, 'the child outlives its parent disconnecting the channel, as under node');
  // In the worker's process group: it goes with the worker.
  t.is(report.child.pgrp, report.pid);
  // No clusterd worker, though it inherited CLUSTERD_WORKER_ID: workerId() said 1 in it too.
  t.is(report.workerId, 1);
  t.is(report.child.workerId, null);
});

test('a worker that dies while a process it started holds its output is restarted at once, and a stop does not wait for that process', async (t) => {
  const cluster = await startCluster(fixture('forks-a-child.js'), { instances: 1, env: { HOLD_SECONDS: '60' } });
  let holder = 0;
  t.teardown(() => {
    if (holder && isAlive(holder)) process.kill(holder, 'SIGKILL');
  });
  const first = cluster.pids[0]!;
  ({ holder } = await getJson<Answer & { holder: number }>(cluster.port, '/crash-holding-output'));
  const exit = await cluster.waitForLine((line) => line.event === 'worker-exit' && line.worker === 1, 20_000);
  const held = cluster.lines.find((line) => line.event === 'output-held');
  t.truthy(held, 'a line says the output is held');
  t.regex(String(held?.message), new RegExp(`worker 1 \\(pid ${first}\\) exited, but its output is still held open`));
  t.true(isAlive(holder), 'the holder was not killed (it left the group: detached)');
  t.log(String(exit.message));
  // A new worker 1, while the holder still runs: the exit was handled without waiting for it.
  const again = await waitFor(async () => {
    const { pid } = await getJson(cluster.port, '/').catch(() => ({ pid: first }));
    return pid !== first ? pid : undefined;
  }, { timeoutMs: 20_000, what: 'a new worker 1 serving' });
  t.true(isAlive(holder));
  t.not(again, first);
  t.is(await cluster.stop(), 0);
});

test('a worker that dies while a process it started holds its IPC channel: the line says the channel is held, and it is restarted', async (t) => {
  const cluster = await startCluster(fixture('forks-a-child.js'), { instances: 1, env: { HOLD_SECONDS: '60' } });
  let holder = 0;
  t.teardown(() => {
    if (holder && isAlive(holder)) process.kill(holder, 'SIGKILL');
  });
  const first = cluster.pids[0]!;
  ({ holder } = await getJson<Answer & { holder: number }>(cluster.port, '/crash-holding-channel'));
  await cluster.waitForLine((line) => line.event === 'worker-exit' && line.worker === 1, 20_000);
  const held = cluster.lines.find((line) => line.event === 'output-held');
  t.is(held?.message, `worker 1 (pid ${first}) exited, but its IPC channel is still held open by a process it started that left its group; not waiting for it`);
  await waitFor(async () => {
    const { pid } = await getJson(cluster.port, '/').catch(() => ({ pid: first }));
    return pid !== first ? pid : undefined;
  }, { timeoutMs: 20_000, what: 'a new worker 1 serving' });
  t.is(await cluster.stop(), 0);
});

// The runtime's messages travel as Node's internal ones (src/protocol.ts), as node:cluster's do.
for (const balance of ['fair', 'rr']) {
  test(`--balance ${balance}: the app's process.on('message') hears none of the runtime's messages`, async (t) => {
    const cluster = await startCluster(fixture('owns-message-event.js'), { instances: 1, flags: ['--balance', balance, '--stats-interval', '250ms'] });
    t.teardown(() => cluster.stop());
    // Connections (under rr each comes as a message with its handle), stats, accept and limit messages.
    for (let i = 0; i < 5; i++) await getJson(cluster.port, '/');
    await cluster.waitForLine((line) => line.event === 'ready');
    const { heard } = await getJson<Answer & { heard: unknown[] }>(cluster.port, '/');
    t.deepEqual(heard, []);
  });
}

test("an app that removes every 'message' listener still boots, serves and drains on stop", async (t) => {
  const cluster = await startCluster(fixture('owns-message-event.js'), { instances: 2, env: { DROP_LISTENERS: '1' } });
  for (let i = 0; i < 4; i++) t.truthy((await getJson(cluster.port, '/')).pid);
  // A stop is a message to each worker: it drains and exits 0 rather than being killed at --grace.
  t.is(await cluster.stop(), 0);
  t.false(cluster.lines.some((line) => line.event === 'grace-expired'), JSON.stringify(cluster.lines.filter((line) => line.event === 'grace-expired')));
});
