// The app's own server.maxConnections in each mode that decides who takes a connection: Node's server
// refuses a connection past it, so a worker there should take none while another has room, and once
// every worker is at its own, the surplus is refused at once, as Node refuses it (not held, nor passed
// round the workers). Asserted by counts of connections, never by speed.
import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import { fixture, startCluster, waitFor } from '../../helpers/cluster.js';
import { control } from '../../helpers/control.js';

/** What became of one request on a connection of its own: the worker that answered, or how it failed. */
type Outcome = { worker: number } | { error: string };

/**
 * Opens `count` keep-alive connections at once, one request each, and keeps them open (the app keeps
 * them a minute) until the test ends: each server holds what it took.
 */
async function hold(t: ExecutionContext, port: number, count: number, agent = pool(t, count)): Promise<Outcome[]> {
  return Promise.all(Array.from({ length: count }, () => ask(port, agent)));
}

function pool(t: ExecutionContext, count: number): http.Agent {
  const agent = new http.Agent({ keepAlive: true, maxSockets: count });
  t.teardown(() => agent.destroy());
  return agent;
}

/** One request through `agent` (false: on a connection of its own, closed after). */
function ask(port: number, agent: http.Agent | false, path = '/', sockets?: Set<unknown>): Promise<Outcome> {
  return new Promise<Outcome>((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, agent, path, timeout: 15_000 }, (response) => {
      sockets?.add(response.socket);
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ worker: (JSON.parse(body) as { worker: number }).worker }));
    });
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
  });
}

function tally(outcomes: readonly Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const outcome of outcomes) {
    const key = 'worker' in outcome ? `worker ${outcome.worker}` : outcome.error;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

for (const balance of ['fair', 'rr', 'least', 'sticky']) {
  // Worker 1 alone has a limit (3), and 20 connections come at once; sticky sends every connection of
  // one address to one worker, so both have the limit there, and 6 come.
  const [env, count]: [Record<string, string>, number] = balance === 'sticky' ? [{ MAX_CONNECTIONS: '3' }, 6] : [{ MAX_CONNECTIONS_1: '3' }, 20];
  test(`${balance}: a worker at its app's own maxConnections takes no more while another has room (Node would refuse them there)`, async (t) => {
    const cluster = await startCluster(fixture('max-connections.js'), { instances: 2, flags: ['--balance', balance], env });
    t.teardown(() => cluster.stop('SIGKILL'));
    const counts = tally(await hold(t, cluster.port, count));
    t.log(counts);
    t.is((counts['worker 1'] ?? 0) + (counts['worker 2'] ?? 0), count, 'every connection served');
    t.true((counts['worker 1'] ?? 0) <= 3);
    if (balance === 'sticky') t.true((counts['worker 2'] ?? 0) <= 3);
  });
  test(`${balance}: once every worker is at its own maxConnections, the surplus is refused at once, as Node refuses it`, async (t) => {
    const cluster = await startCluster(fixture('max-connections.js'), { instances: 2, flags: ['--balance', balance], env: { MAX_CONNECTIONS: '3' } });
    t.teardown(() => cluster.stop('SIGKILL'));
    const outcomes = await hold(t, cluster.port, 10);
    const counts = tally(outcomes);
    t.log(counts);
    t.is(counts['worker 1'], 3);
    t.is(counts['worker 2'], 3);
    // Refused (reset or closed), not left waiting until the client gave up.
    const failed = outcomes.filter((outcome): outcome is { error: string } => 'error' in outcome);
    t.is(failed.length, 4);
    t.false(failed.some(({ error }) => error === 'timed out'), 'a connection was held, not refused');
  });
}

for (const balance of ['fair', 'rr']) {
  // Node refuses every connection past a negative maxConnections, and from Node 21 past 0 as well;
  // Node 20 applies none at 0 (`self.maxConnections && ...`).
  for (const max of ['-1', '0']) {
    const refusesAll = max !== '0' || Number(process.versions.node.split('.')[0]) >= 21;
    test(`${balance}: a worker whose maxConnections is ${max} ${refusesAll ? 'takes no connection; the other takes them all' : 'is not limited (Node 20)'}`, async (t) => {
      // Under fair, a copy sent back at once was closed at once, again and again (two processes busy
      // with it), and the other worker stayed at the smallest limit: 11 of 20 waited for good. A
      // negative one was taken for none, and Node refused about half of them.
      const cluster = await startCluster(fixture('max-connections.js'), { instances: 2, flags: ['--balance', balance], env: { MAX_CONNECTIONS_1: max } });
      t.teardown(() => cluster.stop('SIGKILL'));
      const counts = tally(await hold(t, cluster.port, 20));
      if (refusesAll) t.deepEqual(counts, { 'worker 2': 20 });
      else {
        t.is((counts['worker 1'] ?? 0) + (counts['worker 2'] ?? 0), 20, JSON.stringify(counts));
        t.true((counts['worker 1'] ?? 0) > 0, JSON.stringify(counts));
      }
    });
  }

  test(`${balance}: with one place left among workers at their maxConnections, new connections one at a time are all served`, async (t) => {
    // Each new connection fills the last place, so every worker is at its own for a moment; under
    // fair they then accepted past it (Node refusing), and kept on after the place was free again:
    // 59-68% of such connections were reset.
    const cluster = await startCluster(fixture('max-connections.js'), { instances: 2, flags: ['--balance', balance], env: { MAX_CONNECTIONS: '5' } });
    t.teardown(() => cluster.stop('SIGKILL'));
    t.deepEqual(Object.values(tally(await hold(t, cluster.port, 9))).sort(), [4, 5]);
    const outcomes: Outcome[] = [];
    for (let i = 0; i < 30; i++) outcomes.push(await ask(cluster.port, false));
    const counts = tally(outcomes);
    t.log(counts);
    t.is((counts['worker 1'] ?? 0) + (counts['worker 2'] ?? 0), 30, 'every connection served');
  });
}

test('fair: a worker at its own maxConnections takes no more while the other, which has room, is stalled: the connections wait for it', async (t) => {
  // The one worker left preferred accepted without a limit, past its own maxConnections, and Node
  // reset what it could not hold (10 of 20 once, on CI, where the other worker's loop stalled).
  const ctl = control(t);
  const cluster = await startCluster(fixture('max-connections.js'), { instances: 2, flags: ['--name', 'ceilstall'], env: { ...ctl.env, MAX_CONNECTIONS_1: '3' } });
  t.teardown(() => cluster.stop('SIGKILL'));
  process.kill(cluster.pids[1]!, 'SIGUSR2');
  await waitFor(async () => ((await ctl.workers('ceilstall')) as Array<{ id: number; blockedMs?: number }>).find((worker) => worker.id === 2)!.blockedMs! > 0, { what: 'worker 2 blocked' });
  const counts = tally(await hold(t, cluster.port, 20));
  t.log(counts);
  t.is((counts['worker 1'] ?? 0) + (counts['worker 2'] ?? 0), 20, 'every connection served');
  t.true((counts['worker 1'] ?? 0) <= 3);
});

test('fair: keep-alive connections are not moved off a worker for one that is at its own maxConnections', async (t) => {
  // Counted in the even share, the worker at its limit (3 of 20) had the other asked down to 12: its
  // clients reconnected to it again and again (8,000 new connections in 15 s for a pool of 40).
  const cluster = await startCluster(fixture('max-connections.js'), { instances: 2, env: { MAX_CONNECTIONS_1: '3' } });
  t.teardown(() => cluster.stop('SIGKILL'));
  const agent = pool(t, 20);
  const sockets = new Set<unknown>();
  // Worker 1 takes up to its own 3: fewer when its loop lags as it boots on a loaded box (then it is
  // last in line; a CI run under Node 24 saw 1 and 19), never more, and none is refused.
  const first = tally(await Promise.all(Array.from({ length: 20 }, () => ask(cluster.port, agent, '/', sockets))));
  t.deepEqual(Object.keys(first).sort(), ['worker 1', 'worker 2'], JSON.stringify(first));
  t.true(first['worker 1']! <= 3 && first['worker 1']! + first['worker 2']! === 20, JSON.stringify(first));
  // Rounds of requests over the pool for a few of the master's reports (an ask comes after a whole one).
  const until = Date.now() + 3000;
  let rounds = 0;
  while (Date.now() < until) {
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => ask(cluster.port, agent, '/', sockets)));
    t.false(outcomes.some((outcome) => 'error' in outcome), JSON.stringify(tally(outcomes)));
    rounds++;
  }
  t.log(`${rounds} rounds, ${sockets.size} connections in all`);
  t.true(sockets.size <= 22, `${sockets.size} connections for a pool of 20`);
});

test('fair: a worker whose app raises its maxConnections takes new connections again', async (t) => {
  const cluster = await startCluster(fixture('max-connections.js'), { instances: 2, env: { MAX_CONNECTIONS_1: '3' } });
  t.teardown(() => cluster.stop('SIGKILL'));
  const agent = pool(t, 20);
  t.deepEqual(tally(await hold(t, cluster.port, 20, agent)), { 'worker 1': 3, 'worker 2': 17 });
  // On every connection of the pool, so that worker 1 hears it on its own three.
  t.deepEqual(tally(await Promise.all(Array.from({ length: 20 }, () => ask(cluster.port, agent, '/max/100')))), { 'worker 1': 3, 'worker 2': 17 });
  // Worker 1 stayed full at its old limit for as long as the pool held its three.
  await waitFor(async () => {
    const outcome = await ask(cluster.port, false);
    return 'worker' in outcome && outcome.worker === 1;
  }, { what: 'a new connection answered by worker 1' });
  t.pass();
});
