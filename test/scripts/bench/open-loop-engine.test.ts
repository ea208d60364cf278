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
    t.is(result.requests, 25);
    t.is(result.errors.timeouts, 25);
    // Before, p99 was that of the answered half: a few ms.
    t.true(result.latencyMs.p99 >= 1000, `p99 ${result.latencyMs.p99} ms`);
    t.true(result.latencyMs.p50 < 1000, `p50 ${result.latencyMs.p50} ms`);
    t.true(result.latencyMs.lowerBounds?.includes('p99'));
    t.false(result.latencyMs.lowerBounds?.includes('p50'));
  });
}
