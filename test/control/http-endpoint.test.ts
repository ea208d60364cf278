// The master's small HTTP listeners (src/control/http-endpoint.ts): bounded in connections, and in how long an idle one is held.
import test from 'ava';
import { once } from 'node:events';
import net from 'node:net';
import { waitFor } from '../helpers/cluster.js';
import { IDLE_TIMEOUT_MS, MAX_ENDPOINT_CONNECTIONS, startEndpoint } from '../../src/control/http-endpoint.js';

test('past its connection limit, a listener closes new connections as they come; the open ones are served', async (t) => {
  t.true(MAX_ENDPOINT_CONNECTIONS > 0 && MAX_ENDPOINT_CONNECTIONS <= 1024);
  const endpoint = await startEndpoint({ flag: 'metrics', host: '127.0.0.1', port: 0, maxConnections: 2, serve: (_path, response) => response.end('ok\n') });
  t.teardown(() => endpoint.close());
  const open = async (): Promise<net.Socket> => {
    const socket = net.connect(endpoint.address.port, '127.0.0.1');
    socket.on('error', () => {});
    await once(socket, 'connect');
    return socket;
  };
  const held = [await open(), await open()];
  t.teardown(() => held.forEach((socket) => socket.destroy()));
  // The third is accepted by the kernel, then closed by the server without a byte.
  const third = await open();
  const ended = await Promise.race([once(third, 'close').then(() => 'closed'), once(third, 'data').then(() => 'answered')]);
  t.is(ended, 'closed');
  // The two held still get answers.
  held[0]!.write('GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const [reply] = (await once(held[0]!, 'data')) as [Buffer];
  t.regex(reply.toString(), /^HTTP\/1\.1 200/);
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
