// measureLoop's callbacks: one set before the window is known by the function itself, not by its
// name, so two anonymous ones (the app's, and clusterd's own ticker) are never one entry.
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { measureLoop } from '../../src/loop/phases.js';
import { rearmLater } from './fixtures/own/rearms.js';

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

test('two callbacks of one name set before the window are two entries, each with its own count', async (t) => {
  // Two anonymous timers, and two named alike: each pair was folded into one entry.
  const timers = [
    setInterval(() => busy(8), 40),
    setInterval(() => busy(2), 40),
    setInterval(function tick() {
      busy(4);
    }, 40),
    setInterval(function tick() {
      busy(1);
    }, 40),
  ];
  t.teardown(() => timers.forEach((timer) => clearInterval(timer)));
  // Set before the window, as an app's timers are by the time `clusterd loop` asks.
  const breakdown = await measureLoop(600);
  const timeouts = breakdown.callbacks.filter((callback) => callback.type === 'Timeout');
  const anonymous = timeouts.filter((callback) => callback.function === '');
  const ticks = timeouts.filter((callback) => callback.function === 'tick');
  t.is(anonymous.length, 2, JSON.stringify(timeouts));
  t.is(ticks.length, 2, JSON.stringify(timeouts));
  // Each ran about as often as the others (every 40 ms over the window): none counts another's calls.
  const counts = [...anonymous, ...ticks].map((callback) => callback.count);
  t.true(Math.max(...counts) <= 2 * Math.min(...counts) + 2, JSON.stringify(counts));
  // Located in this file.
  for (const callback of [...anonymous, ...ticks]) t.true(callback.url.endsWith('phases.test.ts'), callback.url);
});

// Serial: the other test's timers would run in this one's window.
test.serial('a timer clusterd\'s own code sets during the window is named by its callback and marked [clusterd], not an anonymous app timer', async (t) => {
  // The whole checkout stands for clusterd's runtime: src/loop/phases.ts, whose hooks are on the stack, and the fixture.
  const ownPrefix = fileURLToPath(new URL('../../', import.meta.url));
  t.teardown(rearmLater(100));
  const breakdown = await measureLoop(600, { ownPrefix });
  const timeouts = breakdown.callbacks.filter((callback) => callback.type === 'Timeout');
  t.deepEqual(timeouts.filter((callback) => callback.function === '' && callback.url === ''), [], JSON.stringify(timeouts));
  const own = timeouts.find((callback) => callback.function === '(anonymous) [clusterd]');
  t.truthy(own, JSON.stringify(timeouts));
  t.true(own!.count >= 5, JSON.stringify(own));
  t.is(own!.url, '');
});

test('requests on a keep-alive connection opened before the window are HTTPINCOMINGMESSAGE, as on a new one', async (t) => {
  // Behind a proxy every request comes on a connection opened long before `clusterd loop` asks: its
  // parser's resource had no init in the window, and was named by its class, HTTPServerAsyncResource.
  const http = await import('node:http');
  const server = http.createServer((_request, response) => {
    busy(3);
    response.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => {
    agent.destroy();
    server.close();
  });
  const { port } = server.address() as { port: number };
  const ask = (): Promise<void> =>
    new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, agent }, (response) => response.resume().on('end', resolve)).on('error', reject);
    });
  await ask(); // the connection, before the window
  const window = measureLoop(500);
  for (let index = 0; index < 10; index++) await ask();
  const breakdown = await window;
  const types = breakdown.callbacks.map((callback) => callback.type);
  t.true(types.includes('HTTPINCOMINGMESSAGE'), types.join(', '));
  t.false(types.includes('HTTPServerAsyncResource'), types.join(', '));
});
