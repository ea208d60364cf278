// --health: /livez and /readyz as probes see them, on a fake readiness (the endpoint alone), then
// on a real cluster with --shutdown-delay: on SIGTERM /readyz turns 503 at once while requests are
// still served for the delay, then the cluster drains; a second SIGTERM or `clusterd stop` drains at
// once, and the delay's end forces nothing; reload, restart and scale are refused during the delay.
import test from 'ava';
import http from 'node:http';
import { LIVE_PATH, READY_PATH, startHealthServer, type Readiness } from '../../src/control/health.js';
import { ListenError } from '../../src/errors.js';
import { ExitCode } from '../../src/exit-codes.js';
import { fixture, get, killOnTeardown, startCluster, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';
import { loadLoop } from '../helpers/requests.js';

function request(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const call = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, headers: response.headers }));
    });
    call.on('error', reject);
    call.end();
  });
}

test('the endpoint: /livez 200, /readyz 200 or 503 by readiness with why, 404 elsewhere, 405 for anything but GET and HEAD', async (t) => {
  let state: Readiness = { ready: true, workersReady: 2, workers: 2, stopping: false };
  const server = await startHealthServer({ host: '127.0.0.1', port: 0, readiness: () => state });
  t.teardown(() => server.close());
  const { port } = server.address;
  t.deepEqual(await request(port, LIVE_PATH).then(({ status, body }) => [status, JSON.parse(body)]), [200, { live: true }]);
  const ready = await request(port, `${READY_PATH}?verbose=1`);
  t.is(ready.status, 200);
  t.deepEqual(JSON.parse(ready.body), state);
  t.is(ready.headers['cache-control'], 'no-store');
  state = { ready: false, workersReady: 0, workers: 2, stopping: false };
  t.is((await request(port, READY_PATH)).status, 503);
  state = { ready: false, workersReady: 2, workers: 2, stopping: true };
  const stopping = await request(port, READY_PATH);
  t.is(stopping.status, 503);
  t.true((JSON.parse(stopping.body) as Readiness).stopping);
  t.is((await request(port, READY_PATH, 'HEAD')).status, 503);
  t.is((await request(port, '/healthz')).status, 404);
  const post = await request(port, READY_PATH, 'POST');
  t.is(post.status, 405);
  t.is(post.headers.allow, 'GET, HEAD');
  await t.throwsAsync(startHealthServer({ host: '127.0.0.1', port, readiness: () => state }), { instanceOf: ListenError, message: /^cannot serve health on 127\.0\.0\.1:\d+: address already in use$/ });
});

test('--shutdown-delay: SIGTERM turns /readyz 503 at once, requests are served through the delay, then the cluster drains and exits 0', async (t) => {
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--health', '127.0.0.1:0', '--shutdown-delay', '5s'] });
  t.teardown(() => cluster.stop('SIGKILL'));
  const ready = cluster.lines.find((line) => line.event === 'ready')!;
  const healthPort = Number(String(ready.health).split(':').pop());
  t.is((await request(healthPort, READY_PATH)).status, 200);
  t.is((await request(healthPort, LIVE_PATH)).status, 200);

  const load = loadLoop(cluster.port, { concurrency: 2 });
  await waitFor(() => load.stats.ok >= 20, { what: 'requests before the signal' });
  const signalled = performance.now();
  // Straight to the master: execa's own kill() would SIGKILL it 5 s later, inside this delay.
  process.kill(cluster.masterPid, 'SIGTERM');
  const answered = await waitFor(async () => ((await request(healthPort, READY_PATH)).status === 503 ? performance.now() : null), { intervalMs: 1, what: '/readyz 503' });
  t.log(`/readyz 503 ${(answered - signalled).toFixed(1)} ms after SIGTERM`);
  // "At once" is by order, not by the wall clock of a loaded box: 503 while the delay still runs.
  t.false(cluster.lines.some((line) => line.event === 'shutdown-delay'), '/readyz turned 503 before the delay ended');
  t.true((await request(healthPort, LIVE_PATH)).status === 200, 'still live during the delay');
  // Served through the delay: requests keep succeeding until the drain starts.
  const atSignal = load.stats.ok;
  await waitFor(() => load.stats.ok >= atSignal + 20, { what: 'requests during the delay' });
  const during = cluster.lines.some((line) => line.event === 'shutdown-delay');
  t.false(during, 'the drain had not started while those were served');
  t.is(load.stats.failed, 0);
  await cluster.waitForLine((line) => line.event === 'shutdown-delay', 15_000);
  await load.stop();
  t.is(await cluster.exited, 0);
});

// SIGQUIT as SIGTERM: the stop signal of images made for nginx, which an orchestrator sends in its place.
const secondDrains = test.macro({
  async exec(t, signal: NodeJS.Signals) {
    const cluster = await startCluster(fixture('hello.js'), { instances: 1, flags: ['--health', '127.0.0.1:0', '--shutdown-delay', '10m'] });
    t.teardown(() => cluster.stop('SIGKILL'));
    cluster.process.kill(signal);
    await cluster.waitForLine((line) => line.event === 'signal' && line.message.startsWith(`${signal}: not ready any more`) && line.message.includes('--shutdown-delay'));
    t.is((await get(cluster.port)).status, 200, 'still serving');
    cluster.process.kill(signal);
    await cluster.waitForLine((line) => line.event === 'signal' && line.message.includes('draining now'));
    t.is(await cluster.exited, 0);
  },
  title: (_title, signal: NodeJS.Signals) => `--shutdown-delay: ${signal} waits the delay out; a second ${signal} drains at once`,
});
test(secondDrains, 'SIGTERM');
test(secondDrains, 'SIGQUIT');

test('--shutdown-delay: `clusterd stop` during the delay drains at once, and the end of the delay kills nothing: a request in flight finishes, exit 0', async (t) => {
  const ctl = control(t);
  // The request outlasts the delay: were the delay's end a second stop, it would force the stop
  // and kill the worker serving it (exit 6). The delay outlasts a CLI's start on a loaded machine
  // (4 s did not, once: the delay ended before the stop came).
  const cluster = await startCluster(fixture('slow-routes.js'), {
    instances: 2,
    flags: ['--name', 'delay-stop', '--health', '127.0.0.1:0', '--shutdown-delay', '10s', '--grace', '1m'],
    env: { ...ctl.env, SLOW_MS: '16000' },
  });
  killOnTeardown(t, cluster.process);
  const slow = get(cluster.port, '/slow', { timeoutMs: 60_000 }).catch((error: unknown) => error as Error);
  await cluster.waitForLine((line) => line.message.startsWith('slow request started'));
  process.kill(cluster.masterPid, 'SIGTERM');
  await cluster.waitForLine((line) => line.event === 'signal' && line.message.includes('--shutdown-delay'));
  const stopped = await ctl.run(['stop', 'delay-stop']);
  t.is(stopped.exitCode, 0, String(stopped.stderr));
  const answer = await slow;
  t.is('status' in answer ? answer.status : String(answer), 200, 'the request in flight was answered');
  t.is(await cluster.exited, ExitCode.OK);
  // The stop ended the delay (said so) instead of the delay ending the stop.
  const events = cluster.lines.filter((line) => line.stream === 'master' && ['operation-requested', 'shutdown-delay', 'signal'].includes(String(line.event)));
  t.deepEqual(
    events.map((line) => line.event),
    ['signal', 'operation-requested', 'shutdown-delay'],
  );
  t.regex(events[2]!.message, /draining now/);
});

test('--shutdown-delay: a reload, restart or scale asked during the delay is refused as while stopping (exit 7), and nothing is forked', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('hello.js'), { instances: 1, flags: ['--name', 'delay-ops', '--health', '127.0.0.1:0', '--shutdown-delay', '10m'], env: ctl.env });
  killOnTeardown(t, cluster.process);
  process.kill(cluster.masterPid, 'SIGTERM');
  await cluster.waitForLine((line) => line.event === 'signal' && line.message.includes('--shutdown-delay'));
  for (const args of [['reload', 'delay-ops'], ['restart', 'delay-ops', '1'], ['scale', 'delay-ops', '3']]) {
    const refused = await ctl.run(args);
    t.is(refused.exitCode, ExitCode.NOT_FOUND, `${args[0]}: ${String(refused.stderr)}`);
    t.deepEqual(String(refused.stderr).trim().split('\n'), ['clusterd: the cluster is stopping'], args[0]);
  }
  t.deepEqual((await ctl.workers('delay-ops')).map((worker) => worker.pid), cluster.pids, 'the same worker serves, none was added');
  t.is((await get(cluster.port)).status, 200, 'still serving through the delay');
  process.kill(cluster.masterPid, 'SIGTERM');
  t.is(await cluster.exited, ExitCode.OK);
});

test('--shutdown-delay: a reload under way at the SIGTERM replaces no further worker', async (t) => {
  // Only new operations were refused: the reload went on to fork worker 2's replacement during the
  // delay, for a pod on its way out.
  const ctl = control(t);
  const cluster = await startCluster(fixture('hello.js'), {
    instances: 2,
    flags: ['--name', 'delay-reload', '--shutdown-delay', '10m', `--node-arg=--require=${fixture('slow-preload.cjs')}`],
    env: { ...ctl.env, PRELOAD_SLEEP_MS: '3000' },
    readyTimeoutMs: 30_000,
  });
  killOnTeardown(t, cluster.process);
  const reload = ctl.run(['reload', 'delay-reload', '--json'], { timeoutMs: 60_000 });
  await waitFor(async () => (await ctl.workers('delay-reload')).some((worker) => (worker as { generation?: number }).generation === 2), { what: "worker 1's replacement", timeoutMs: 20_000 });
  process.kill(cluster.masterPid, 'SIGTERM');
  const result = await reload;
  t.is(result.exitCode, ExitCode.NOT_FOUND, String(result.stderr));
  const steps = String(result.stdout).trim().split('\n').map((line) => JSON.parse(line) as { id: number; phase: string });
  t.false(steps.some((step) => step.id === 2 && step.phase === 'starting'), JSON.stringify(steps));
  process.kill(cluster.masterPid, 'SIGTERM');
  t.is(await cluster.exited, ExitCode.OK);
});

test('/readyz: a worker whose loop is blocked now is not counted ready; with every worker blocked the cluster is not ready, and is again once they turn', async (t) => {
  // No watchdog: the workers stay blocked (a second of silence reads as blocked).
  const cluster = await startCluster(fixture('busy-route.js'), { instances: 1, flags: ['--health', '127.0.0.1:0', '--watchdog', '0'], env: { SPIN_MS: '8000' } });
  t.teardown(() => cluster.stop('SIGKILL'));
  const ready = cluster.lines.find((line) => line.event === 'ready')!;
  const healthPort = Number(String(ready.health).split(':').pop());
  const readyz = async (): Promise<{ status: number; body: Record<string, unknown> }> => {
    const response = await request(healthPort, READY_PATH);
    return { status: response.status, body: JSON.parse(response.body) as Record<string, unknown> };
  };
  t.like(await readyz(), { status: 200, body: { ready: true, workersReady: 1, workersBlocked: 0, workers: 1 } });
  await get(cluster.port, '/spin');
  const blocked = await waitFor(async () => {
    const now = await readyz();
    return now.status === 503 ? now : undefined;
  }, { timeoutMs: 7000, what: '/readyz 503 while the only worker is blocked' });
  t.like(blocked.body, { ready: false, workersReady: 0, workersBlocked: 1, workers: 1, stopping: false });
  t.is((await request(healthPort, LIVE_PATH)).status, 200, 'the master itself is live');
  await waitFor(async () => (await readyz()).status === 200, { timeoutMs: 20_000, what: '/readyz 200 once the loop turns' });
});
