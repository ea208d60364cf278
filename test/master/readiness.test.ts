// Issue 2, point 5: when a worker counts as ready, and what the master says once all are.
import test from 'ava';
import { ExitCode } from '../../src/exit-codes.js';
import { fixture, launch, startCluster, type OutputLine } from '../helpers/cluster.js';
import { workerCount } from '../../src/master/run.js';
import { getJson, untilEveryWorker } from '../helpers/requests.js';

test('a worker is ready once every server it started listens; the ready event names addresses, count and pids', async (t) => {
  const cluster = await startCluster(fixture('slow-second-server.js'), { env: { UV_THREADPOOL_SIZE: '1' } });
  t.teardown(() => cluster.stop());
  const ready = cluster.lines.find((line) => line.event === 'ready')!;
  // The second server listens some 100 ms after the first (see the fixture): had a worker been
  // ready with one server listening, the ready event would name one address only.
  const listening = await Promise.all(
    [1, 2].flatMap((worker) =>
      ['ip', 'named'].map((name) => cluster.waitForLine((line) => line.worker === worker && line.message.startsWith(`listening ${name} `))),
    ),
  );
  const addresses = [...new Set(listening.map((line) => line.message.split(' ')[2]!))].sort();
  t.is(addresses.length, 2);
  t.deepEqual([...(ready.addresses as string[])].sort(), addresses);

  const workers = ready.workers as { id: number; pid: number }[];
  t.deepEqual(workers.map((worker) => worker.id), [1, 2]);
  t.deepEqual([...new Set(listening.map((line) => line.pid))].sort(), [...cluster.pids].sort());
  for (const address of addresses) t.true(ready.message.includes(address), ready.message);
  t.true(ready.message.includes('2 workers'), ready.message);
  for (const pid of cluster.pids) t.true(ready.message.includes(String(pid)), ready.message);
  for (const address of addresses) {
    const port = Number(address.split(':').pop());
    if (address.startsWith('127.0.0.1:')) await untilEveryWorker(() => getJson(port), cluster.pids, { what: `answers on ${address}` });
  }
});

test('the ready line says "pid" for one worker, "pids" for more', async (t) => {
  // `with 1 worker (pids 17574)`, in the ready line and in start -d's.
  t.is(workerCount({ workers: [{ id: 1, pid: 41 }] }), '1 worker (pid 41)');
  t.is(workerCount({ workers: [{ id: 1, pid: 41 }, { id: 2, pid: 42 }] }), '2 workers (pids 41, 42)');
  const cluster = await startCluster(fixture('hello.js'), { instances: 1 });
  t.teardown(() => cluster.stop());
  const ready = cluster.lines.find((line) => line.event === 'ready')!;
  t.regex(ready.message, new RegExp(`with 1 worker \\(pid ${cluster.pids[0]}\\)$`));
});

test('an app that finishes with nothing left running fails its boot at once, not after --listen-timeout, and says why', async (t) => {
  // 10 minutes: only an exit of the worker's own could end its boots within the test's time.
  const cluster = launch(['start', fixture('finishes-without-listening.js'), '-i', '2', '--listen-timeout', '10m']);
  t.teardown(() => {
    if (cluster.process.exitCode === null) cluster.process.kill('SIGKILL');
  });
  t.is(await cluster.exited, ExitCode.BOOT_FAILED);
  // The master's one line; the workers' own stderr lines ([wN]) come before it.
  const own = cluster.stderr.filter((line) => !line.startsWith('[w'));
  t.is(own.length, 1, cluster.stderr.join('\n'));
  t.regex(own[0] ?? '', /^clusterd: error: .*exited with code 0 before it was ready: clusterd: the app's entry finished with nothing left running, before it listened on a port$/);
  t.true(cluster.lines.some((line) => line.message === '[w1] done'));
});

test("--wait-ready: a worker that said 'ready' with nothing else running stays, as one that listens does", async (t) => {
  const cluster = launch(['start', fixture('ready-without-server.js'), '-i', '1', '--wait-ready', '--log-format', 'json']);
  t.teardown(async () => {
    cluster.process.kill('SIGTERM');
    await cluster.exited;
  });
  await cluster.waitForLine((line) => line.event === 'ready');
  await cluster.waitForLine((line) => line.worker === 1 && line.message === 'still here');
  t.false(cluster.lines.some((line) => line.event === 'worker-exit'));
});

test('--wait-ready: ready only once every worker called process.send("ready")', async (t) => {
  const cluster = launch(['start', fixture('wait-ready.js'), '-i', '2', '--log-format', 'json', '--wait-ready']);
  t.teardown(async () => {
    cluster.process.kill('SIGTERM');
    await cluster.exited;
  });
  const isReady = (line: OutputLine): boolean => line.event === 'ready';
  const listening = await Promise.all(
    [1, 2].map((worker) => cluster.waitForLine((line) => line.worker === worker && line.message.startsWith('listening '))),
  );
  const [first, second] = listening.map((line) => line.pid);

  process.kill(first!, 'SIGUSR2');
  await cluster.waitForLine((line) => line.pid === first && line.message === 'signalled');
  t.false(cluster.lines.some(isReady), 'not ready while worker 2 has not signalled');
  // Worker 2 listens but has not said it is ready: every connection goes to worker 1.
  const port = Number(listening[0]!.message.split(' ')[1]);
  const answeredBy = await Promise.all(Array.from({ length: 12 }, () => getJson(port).then((answer) => answer.pid)));
  t.deepEqual(new Set(answeredBy), new Set([first]));

  process.kill(second!, 'SIGUSR2');
  const ready = await cluster.waitForLine(isReady);
  await cluster.waitForLine((line) => line.pid === second && line.message === 'signalled');
  t.deepEqual(
    (ready.workers as { pid: number }[]).map((worker) => worker.pid),
    [first, second],
  );
  t.is(cluster.lines.filter((line) => line.message === 'signalled').length, 2);
  t.is(cluster.lines.filter(isReady).length, 1);
});

test('--listen-timeout: an app that never listens stops the master with one line on stderr', async (t) => {
  // 3 s: each worker must boot and print `started` before the timeout kills it (a node boot may take
  // over a second on a loaded machine); it never listens, however long the timeout.
  const cluster = launch(['start', fixture('never-listens.js'), '-i', '2', '--listen-timeout', '3s']);
  t.teardown(() => {
    if (cluster.process.exitCode === null) cluster.process.kill('SIGKILL');
  });
  t.is(await cluster.exited, ExitCode.BOOT_FAILED);
  t.is(cluster.stderr.length, 1, cluster.stderr.join('\n'));
  t.regex(cluster.stderr[0] ?? '', /^clusterd: error: .*not ready after 3000 ms.*--listen-timeout/);
  t.true(cluster.lines.some((line) => line.message === '[w1] started'));
});
