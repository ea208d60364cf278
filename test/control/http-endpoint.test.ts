// The master's small HTTP listeners (src/control/http-endpoint.ts): bounded in connections, and in how long an idle one is held.
import test from 'ava';
import { once } from 'node:events';
import net from 'node:net';
import { waitFor } from '../helpers/cluster.js';
import { IDLE_TIMEOUT_MS, MAX_ENDPOINT_CONNECTIONS, MAX_PIPELINED, requestPath, startEndpoint } from '../../src/control/http-endpoint.js';

/** A connection to the endpoint, open. */
async function connectTo(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

/** One GET on a fresh connection: its status, or the error that ended it. */
async function probe(port: number, path = '/livez'): Promise<number | string> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
    await response.text();
    return response.status;
  } catch (error) {
    return String((error as Error & { cause?: Error }).cause?.message ?? error);
  }
}

test('past its connection limit, a newcomer takes the place of the oldest idle connection: connections that send nothing cannot lock out a probe', async (t) => {
  t.true(MAX_ENDPOINT_CONNECTIONS > 0 && MAX_ENDPOINT_CONNECTIONS <= 1024);
  const endpoint = await startEndpoint({ flag: 'health', host: '127.0.0.1', port: 0, maxConnections: 4, serve: (_path, response) => response.end('ok\n') });
  t.teardown(() => endpoint.close());
  // Twice the limit, sending nothing (as an attacker holding every slot would).
  const idle: net.Socket[] = [];
  t.teardown(() => idle.forEach((socket) => socket.destroy()));
  for (let i = 0; i < 8; i++) idle.push(await connectTo(endpoint.address.port));
  // Each probe gets in, in place of the oldest idle connection, and is answered.
  for (let i = 0; i < 3; i++) t.is(await probe(endpoint.address.port), 200);
  await waitFor(() => idle.filter((socket) => !socket.destroyed && !socket.closed).length <= 4, { what: 'the oldest idle connections closed' });
  t.true(idle[0]!.closed || idle[0]!.destroyed, 'the oldest went first');
});

test('when every connection has a request in progress, a newcomer is closed; the ones in progress are answered', async (t) => {
  const answers: Array<() => void> = [];
  const endpoint = await startEndpoint({
    flag: 'dashboard',
    host: '127.0.0.1',
    port: 0,
    maxConnections: 2,
    serve: (_path, response) => answers.push(() => response.end('ok\n')),
  });
  t.teardown(() => endpoint.close());
  const busy = [await connectTo(endpoint.address.port), await connectTo(endpoint.address.port)];
  t.teardown(() => busy.forEach((socket) => socket.destroy()));
  for (const socket of busy) socket.write('GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(() => answers.length === 2, { what: 'both requests in progress' });
  const third = await connectTo(endpoint.address.port);
  const ended = await Promise.race([once(third, 'close').then(() => 'closed'), once(third, 'data').then(() => 'answered')]);
  t.is(ended, 'closed');
  const reply = once(busy[0]!, 'data');
  answers[0]!();
  t.regex(String(((await reply) as [Buffer])[0]), /^HTTP\/1\.1 200/);
});

test(`more than ${MAX_PIPELINED} requests pipelined on one connection close it: the master does not build an answer for each`, async (t) => {
  let built = 0;
  const endpoint = await startEndpoint({
    flag: 'dashboard',
    host: '127.0.0.1',
    port: 0,
    serve: (_path, response) => {
      built++;
      response.end('x'.repeat(64 * 1024));
    },
  });
  t.teardown(() => endpoint.close());
  const socket = await connectTo(endpoint.address.port);
  t.teardown(() => socket.destroy());
  // 200 requests in one write (a client that then never reads would have them all pile up in the master).
  socket.resume();
  const closed = once(socket, 'close');
  socket.write('GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(200));
  await closed;
  t.true(built <= MAX_PIPELINED, `${built} answers built`);
  // Others are served as before; a client that sends one request at a time never meets the limit.
  t.is(await probe(endpoint.address.port, '/api/status'), 200);
  // (fetch keeps one connection alive for requests sent one after another.)
  for (let i = 0; i < MAX_PIPELINED + 4; i++) t.is(await probe(endpoint.address.port, '/api/status'), 200);
});

test('a client that sends its request and never reads the answer is closed once nothing moves for the idle timeout; one that reads gets it whole', async (t) => {
  t.true(IDLE_TIMEOUT_MS >= 30_000 && IDLE_TIMEOUT_MS <= 300_000);
  const body = 'x'.repeat(16 * 2 ** 20);
  // When the server let go of an answer (its response closed: taken whole, or its socket destroyed).
  let released = 0;
  const endpoint = await startEndpoint({
    flag: 'dashboard',
    host: '127.0.0.1',
    port: 0,
    idleTimeoutMs: 500,
    serve: (_path, response) => {
      response.on('close', () => released++);
      response.end(body);
    },
  });
  t.teardown(() => endpoint.close());
  const stalled = net.connect({ port: endpoint.address.port, host: '127.0.0.1' });
  stalled.on('error', () => {});
  t.teardown(() => stalled.destroy());
  await once(stalled, 'connect');
  // Reads nothing: the kernel's buffers fill, the rest waits in the server, then nothing moves.
  stalled.pause();
  stalled.write('GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(() => released === 1, { what: 'the server to let go of the stalled answer', timeoutMs: 20_000 });
  // The client, reading now, gets what the kernel held and the end: the answer was cut, not kept.
  let received = 0;
  stalled.on('data', (chunk: Buffer) => (received += chunk.length));
  stalled.resume();
  await once(stalled, 'close');
  t.true(received < body.length, `${received} of ${body.length} bytes`);

  const response = await fetch(`http://127.0.0.1:${endpoint.address.port}/api/status`);
  t.is((await response.text()).length, body.length);
});

test('a request target in absolute form (http://host/metrics) is served as its path, as the origin form is', async (t) => {
  t.is(requestPath('/metrics?x=1'), '/metrics');
  t.is(requestPath('http://x/metrics?x=1'), '/metrics');
  t.is(requestPath('*'), '*');
  const endpoint = await startEndpoint({ flag: 'metrics', host: '127.0.0.1', port: 0, serve: (path, response) => response.end(`${path}\n`) });
  t.teardown(() => endpoint.close());
  const socket = await connectTo(endpoint.address.port);
  let answer = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
  socket.end('GET http://127.0.0.1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
  await once(socket, 'close');
  t.regex(answer, /^HTTP\/1\.1 200 /);
  t.regex(answer, /\r\n\/metrics\n$/);
});
