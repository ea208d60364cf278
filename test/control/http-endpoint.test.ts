// The master's small HTTP listeners (src/control/http-endpoint.ts): bounded in connections.
import test from 'ava';
import { once } from 'node:events';
import net from 'node:net';
import { startEndpoint, MAX_ENDPOINT_CONNECTIONS } from '../../src/control/http-endpoint.js';

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
