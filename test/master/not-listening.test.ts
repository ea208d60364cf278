// A worker whose app closes every server it listened on, and runs on, is not ready: the master says
// so in one line, /readyz, `status` and the balancers count it out, and it is ready again once it
// listens again. It is neither killed nor restarted. A drain of clusterd's own (a stop, a reload,
// cluster.worker.disconnect()) closes servers too, and says nothing of the kind.
import test from 'ava';
import http from 'node:http';
import { fixture, get, startCluster, waitFor, type Cluster, type OutputLine } from '../helpers/cluster.js';
import { control, type Control } from '../helpers/control.js';
import { getJson, untilEveryWorker, type Answer } from '../helpers/requests.js';
import { reusePortSupport } from '../../src/master/balancers/shared.js';
import type { BalanceMode } from '../../src/master/balancers/types.js';
import { LISTENING_LINES_PER_MINUTE } from '../../src/master/channel-misuse.js';

const notListening = (line: OutputLine): boolean => line.event === 'worker-not-listening';
const listensAgain = (line: OutputLine): boolean => line.event === 'worker-listening';

/** /readyz's status and its count of ready workers. */
function readyz(port: number): Promise<{ status: number; workersReady: number }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/readyz', agent: false }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, workersReady: (JSON.parse(body) as { workersReady: number }).workersReady }));
      })
      .on('error', reject);
  });
}

/** `status --json`: the count of ready workers and each worker's state, by id. */
async function status(ctl: Control, name: string): Promise<{ ready: number; states: [number, string][] }> {
  const result = await ctl.run(['status', name, '--json']);
  if (result.exitCode !== 0) throw new Error(`status failed: ${String(result.stderr)}`);
  const json = JSON.parse(String(result.stdout)) as { totals: { ready: number }; workers: { id: number; state: string }[] };
  return { ready: json.totals.ready, states: json.workers.map((worker) => [worker.id, worker.state]) };
}

function healthPort(cluster: Cluster): number {
  const ready = cluster.lines.find((line) => line.event === 'ready')!;
  return Number(String(ready.health).split(':').pop());
}

const closesItsServer = test.macro({
  async exec(t, balance: BalanceMode) {
    const ctl = control(t);
    if (balance === 'reuseport' && reusePortSupport() !== null) {
      t.pass(`reuseport needs Node >= 22.12 on Linux (${process.versions.node} here)`);
      return;
    }
    const name = `closer-${balance}`;
    const cluster = await startCluster(fixture('closes-its-server.js'), { instances: 2, flags: ['--name', name, '--balance', balance, '--health', '127.0.0.1:0'], env: ctl.env });
    t.teardown(() => cluster.stop('SIGKILL'));
    const health = healthPort(cluster);
    const [first, second] = cluster.pids as [number, number];
    t.deepEqual(await readyz(health), { status: 200, workersReady: 2 });

    // Worker 1's app closes its server and runs on.
    process.kill(first, 'SIGUSR2');
    const said = await cluster.waitForLine(notListening);
    t.like(said, { worker: 1, pid: first, level: 'warn', message: `worker 1 (pid ${first}) closed every server it listened on: not ready until it listens again` });
    t.deepEqual(await readyz(health), { status: 200, workersReady: 1 });
    t.deepEqual(await status(ctl, name), { ready: 1, states: [[1, 'not-listening'], [2, 'ready']] });
    // Every new connection goes to worker 2 (under sticky, 127.0.0.1's id is worker 2's, or its
    // connections wait out 5 s for worker 1 once, as for any worker not accepting, then go there).
    for (let i = 0; i < 12; i++) t.is((await getJson(cluster.port)).pid, second);

    // It listens again: ready again, and served again.
    process.kill(first, 'SIGUSR2');
    const back = await cluster.waitForLine(listensAgain);
    t.like(back, { worker: 1, pid: first, message: `worker 1 (pid ${first}) listens again: ready` });
    t.deepEqual(await readyz(health), { status: 200, workersReady: 2 });
    t.deepEqual(await status(ctl, name), { ready: 2, states: [[1, 'ready'], [2, 'ready']] });
    // Sticky sends 127.0.0.1 to one worker only: there, being counted ready is what is asked.
    if (balance !== 'sticky') await untilEveryWorker(() => getJson(cluster.port), [first, second]);
    // The same process all along, and said once each way.
    t.false(cluster.lines.some((line) => line.event === 'worker-exit'));
    t.is(cluster.lines.filter(notListening).length, 1);
    t.is(cluster.lines.filter(listensAgain).length, 1);
  },
  title: (_title, balance: BalanceMode) => `--balance ${balance}: a worker whose app closed its server is not ready (/readyz, status, no connections) until it listens again`,
});

for (const balance of ['fair', 'rr', 'least', 'sticky', 'shared', 'reuseport'] as const) test(closesItsServer, balance);

test('every worker closed: /readyz 503, 0/2 ready, nothing restarted; both ready again once they listen again', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('closes-its-server.js'), { instances: 2, flags: ['--name', 'closers', '--health', '127.0.0.1:0'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const health = healthPort(cluster);
  for (const pid of cluster.pids) process.kill(pid, 'SIGUSR2');
  await waitFor(() => cluster.lines.filter(notListening).length === 2, { what: 'both workers said not listening' });
  t.deepEqual(await readyz(health), { status: 503, workersReady: 0 });
  t.deepEqual(await status(ctl, 'closers'), { ready: 0, states: [[1, 'not-listening'], [2, 'not-listening']] });
  for (const pid of cluster.pids) process.kill(pid, 'SIGUSR2');
  await waitFor(() => cluster.lines.filter(listensAgain).length === 2, { what: 'both workers listening again' });
  t.deepEqual(await readyz(health), { status: 200, workersReady: 2 });
  // The last close released the address; listen(0) again got a port anew.
  const listed = JSON.parse(String((await ctl.run(['status', 'closers', '--json'])).stdout)) as { addresses: string[] };
  const port = Number(listed.addresses[0]?.split(':').pop());
  await untilEveryWorker(() => getJson(port), cluster.pids);
  t.false(cluster.lines.some((line) => line.event === 'worker-exit'));
});

test("--wait-ready: a worker listening again is ready again, without a second 'ready'", async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('closes-its-server.js'), { instances: 2, flags: ['--name', 'waits', '--wait-ready', '--health', '127.0.0.1:0'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const [first] = cluster.pids as [number, number];
  process.kill(first, 'SIGUSR2');
  await cluster.waitForLine(notListening);
  t.deepEqual(await readyz(healthPort(cluster)), { status: 200, workersReady: 1 });
  process.kill(first, 'SIGUSR2');
  await cluster.waitForLine(listensAgain);
  t.deepEqual(await status(ctl, 'waits'), { ready: 2, states: [[1, 'ready'], [2, 'ready']] });
});

test('a server closed and listened again at once (in its close callback) makes no not-ready line', async (t) => {
  // relistens.js closes and listens again 12 times after its first listen; its answer has counts.last after the last.
  const cluster = await startCluster(fixture('relistens.js'), { instances: 2 });
  t.teardown(() => cluster.stop('SIGKILL'));
  await untilEveryWorker(async () => {
    const answer = await getJson<Answer & { counts: { last?: unknown } }>(cluster.port);
    return answer.counts.last === undefined ? { pid: -1 } : answer;
  }, cluster.pids, { what: 'every worker done with its closes and listens' });
  t.false(cluster.lines.some((line) => notListening(line) || listensAgain(line)));
});

test("clusterd's own drains close servers without a not-ready line: cluster.worker.disconnect(), reload, stop", async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('cluster-worker.js'), { instances: 2, flags: ['--name', 'drains'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  // disconnect(): the worker drains itself, exits, and is replaced; the master took it for ready all
  // along. Its connection kept alive holds the drain open (until its idle sweep), past the close.
  const agent = new http.Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  const leaving = await getJson(cluster.port, '/disconnect', { agent });
  await cluster.waitForLine((line) => line.event === 'worker-exit' && line.pid === leaving.pid);
  await waitFor(async () => (await status(ctl, 'drains')).ready === 2, { what: 'the replacement ready' });
  const reload = await ctl.run(['reload', 'drains']);
  t.is(reload.exitCode, 0, String(reload.stderr));
  t.is(await cluster.stop('SIGTERM'), 0);
  t.false(cluster.lines.some((line) => notListening(line) || listensAgain(line)));
  // The drains did close servers: a request now finds nothing listening.
  await t.throwsAsync(get(cluster.port));
});

test('an app that says it closed and listens again 200 times in a row gets ten lines a minute, then one saying the rest go unlogged', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('toggles-listening.js'), { instances: 2, flags: ['--name', 'toggles'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  await cluster.waitForLine((line) => line.event === 'listening-unlogged');
  // Its last message says it listens: once the master has it, every one before it was handled.
  await waitFor(async () => (await ctl.workers('toggles')).find((worker) => worker.id === 1)?.state === 'ready', { what: 'worker 1 ready after its last message' });
  const changes = cluster.lines.filter((line) => notListening(line) || listensAgain(line));
  t.is(changes.length, LISTENING_LINES_PER_MINUTE, 'ten logged: it wrote a line per message');
  t.is(cluster.lines.filter((line) => line.event === 'listening-unlogged').length, 1);
});
