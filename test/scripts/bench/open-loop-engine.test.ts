// The open-loop engine against small local servers on 127.0.0.1:0: what it charges a system with when
// requests go unanswered, or when the server closes keep-alive connections.
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { runOpenLoop, type EngineConfig } from '../../../scripts/bench/load/open-loop-engine.js';

/** A server on 127.0.0.1:0 that `handle` answers; closed after the test. */
async function serve(t: { teardown(fn: () => void): void }, handle: http.RequestListener): Promise<number> {
  const server = http.createServer(handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

const hello = (response: http.ServerResponse, headers: http.OutgoingHttpHeaders = {}) => {
  response.writeHead(200, { 'content-length': '6', ...headers });
  response.end('hello\n');
};

const config = (port: number, extra: Partial<EngineConfig>): EngineConfig => ({
  host: '127.0.0.1',
  port,
  rate: 50,
  durationS: 1,
  timeoutS: 0.3,
  paths: ['/'],
  keepAlive: false,
  pool: 4,
  maxInFlight: 100,
  ...extra,
});

for (const keepAlive of [false, true]) {
  test(`requests that time out count in the percentiles, at the timeout at least (${keepAlive ? 'keep-alive' : 'new connection per request'})`, async (t) => {
    // Every second request is never answered: half of them time out.
    const port = await serve(t, (request, response) => {
      if (request.url === '/fast') hello(response);
    });
    const result = await runOpenLoop(config(port, { keepAlive, paths: ['/fast', '/hang'], pool: 8, timeoutS: 1 }));
    // (A fast one may time out too on a busy shared machine: at least half, and each request once.)
    t.true(result.errors.timeouts >= 25, `${result.errors.timeouts} timeouts`);
    t.is(result.requests + result.errors.timeouts, 50);
    // Before, p99 was that of the answered half: a few ms.
    t.true(result.latencyMs.p99 >= 1000, `p99 ${result.latencyMs.p99} ms`);
    t.true(result.latencyMs.lowerBounds?.includes('p99'));
  });
}

test('keep-alive: a connection the server ends with Connection: close is replaced, never reused', async (t) => {
  // Every 5th response ends its connection, as clusterd's fair mode does to move a client.
  let served = 0;
  const port = await serve(t, (_request, response) => {
    served++;
    hello(response, served % 5 === 0 ? { connection: 'close' } : {});
  });
  const result = await runOpenLoop(config(port, { keepAlive: true, rate: 500, pool: 8, timeoutS: 5 }));
  // Before, the next request went out on the closing connection: socket errors a real client never sees.
  t.deepEqual(result.errors, { socket: 0, non2xx: 0, timeouts: 0, total: 0 });
  t.is(result.requests, 500);
  t.is(result.open?.reconnects, 100);
  t.is(result.open?.connections, 8 + 100);
});
