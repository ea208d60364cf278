// Issue 3, point 1: requests, requests in flight and open connections, counted by the runtime for
// every server the app starts (HTTP/1 and http2 alike), with no change to the app.
import test from 'ava';
import http from 'node:http';
import http2 from 'node:http2';
import { fixture, get, killOnTeardown, startCluster, waitFor, type Cluster } from '../helpers/cluster.js';
import { getJson, type Answer } from '../helpers/requests.js';

/** Worker 1's HTTP figures from /metrics: requests total, in flight, connections. */
async function figures(metricsUrl: string): Promise<{ requests: number; inflight: number; connections: number }> {
  const { body } = await fetchText(metricsUrl);
  const value = (name: string) => {
    const line = body.split('\n').find((text) => text.startsWith(`${name}{`) && text.includes('worker="1"'));
    return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
  };
  return {
    requests: value('clusterd_worker_http_requests_total'),
    inflight: value('clusterd_worker_http_requests_in_flight'),
    connections: value('clusterd_worker_http_connections'),
  };
}

async function fetchText(url: string): Promise<{ body: string }> {
  const response = await fetch(url);
  return { body: await response.text() };
}

async function start(t: { teardown(fn: () => void): void }, entry: string): Promise<{ cluster: Cluster; metricsUrl: string }> {
  const cluster = await startCluster(fixture(entry), { instances: 1, flags: ['--metrics', '127.0.0.1:0', '--stats-interval', '100ms'] });
  killOnTeardown(t, cluster.process);
  const ready = await cluster.waitForLine((line) => line.event === 'ready');
  return { cluster, metricsUrl: ready.metrics as string };
}

test('HTTP/1: requests, a request in flight and open connections are counted', async (t) => {
  const { cluster, metricsUrl } = await start(t, 'slow-routes.js');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  for (let i = 0; i < 5; i++) t.is((await get(cluster.port, '/', { agent })).status, 200);
  // A second connection, whose request never gets an answer.
  const hanging = http.get({ port: cluster.port, host: '127.0.0.1', path: '/hang', agent: false });
  hanging.on('error', () => {});
  t.teardown(() => hanging.destroy());
  await cluster.waitForLine((line) => line.stream === 'stdout' && line.message.startsWith('hang request started'));

  const seen = await waitFor(
    async () => {
      const now = await figures(metricsUrl);
      return now.requests === 6 && now.inflight === 1 && now.connections === 2 ? now : null;
    },
    { what: '6 requests, 1 in flight, 2 connections' },
  );
  t.deepEqual(seen, { requests: 6, inflight: 1, connections: 2 });

  // The hanging request's client leaves: nothing in flight, one connection left.
  hanging.destroy();
  await waitFor(
    async () => {
      const now = await figures(metricsUrl);
      return now.inflight === 0 && now.connections === 1 ? now : null;
    },
    { what: '0 in flight, 1 connection' },
  );
  t.pass();
});

test('http2: requests and requests in flight are counted too', async (t) => {
  const { cluster, metricsUrl } = await start(t, 'http2-routes.js');
  const session = http2.connect(`http://127.0.0.1:${cluster.port}`);
  session.on('error', () => {});
  t.teardown(() => session.destroy());
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve, reject) => {
      const stream = session.request({ ':path': '/' });
      stream.on('error', reject);
      stream.resume();
      stream.on('end', resolve);
    });
  }
  const hanging = session.request({ ':path': '/hang' });
  hanging.on('error', () => {});
  await waitFor(
    async () => {
      const now = await figures(metricsUrl);
      return now.requests === 4 && now.inflight === 1 ? now : null;
    },
    { what: '4 requests, 1 in flight' },
  );
  hanging.close();
  await waitFor(async () => ((await figures(metricsUrl)).inflight === 0 ? true : null), { what: 'nothing in flight' });
  t.pass();
});

// A server closed and listened again is followed once: before, each listen added its listeners
// again (MaxListenersExceededWarning at the 11th) and chained another acceptor onto the server.
for (const balance of ['fair', 'rr']) {
  test(`--balance ${balance}: a server listened and closed 12 times keeps the listeners of its first listen, and warns of nothing`, async (t) => {
    const cluster = await startCluster(fixture('relistens.js'), { instances: 1, flags: ['--balance', balance] });
    t.teardown(() => cluster.stop());
    const answer = await getJson<Answer & { counts: { first: Record<string, number>; last: Record<string, number> }; warnings: string[] }>(cluster.port, '/');
    t.deepEqual(answer.counts.last, answer.counts.first);
    t.deepEqual(answer.warnings, []);
    // It still serves.
    for (let i = 0; i < 3; i++) await getJson(cluster.port, '/');
  });
}
