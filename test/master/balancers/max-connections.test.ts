// The app's own server.maxConnections in each mode that decides who takes a connection: Node's server
// refuses a connection past it, so a worker there should take none while another has room, and once
// every worker is at its own, the surplus is refused at once, as Node refuses it (not held, nor passed
// round the workers). Asserted by counts of connections, never by speed.
import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import { fixture, startCluster } from '../../helpers/cluster.js';

/** What became of one request on a connection of its own: the worker that answered, or how it failed. */
type Outcome = { worker: number } | { error: string };

/**
 * Opens `count` keep-alive connections at once, one request each, and keeps them open (the app keeps
 * them a minute) until the test ends: each server holds what it took.
 */
async function hold(t: ExecutionContext, port: number, count: number): Promise<Outcome[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: count });
  t.teardown(() => agent.destroy());
  return Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Outcome>((resolve) => {
          const request = http.get({ host: '127.0.0.1', port, agent, path: '/', timeout: 15_000 }, (response) => {
            let body = '';
            response.setEncoding('utf8');
            response.on('data', (chunk: string) => (body += chunk));
            response.on('end', () => resolve({ worker: (JSON.parse(body) as { worker: number }).worker }));
          });
          request.on('timeout', () => request.destroy(new Error('timed out')));
          request.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
        }),
    ),
  );
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
