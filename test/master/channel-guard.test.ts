import test from 'ava';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { NestingScan } from '../../src/master/channel-guard.js';
import { followMessages, type MessageHost } from '../../src/master/worker-messages.js';
import { waitFor } from '../helpers/cluster.js';

test('the nesting scan counts brackets outside strings, across pieces, line by line', (t) => {
  const scan = new NestingScan();
  // Brackets inside strings, escaped quotes among them, are text.
  t.false(scan.deeperThan(`{"cmd":"app","x":"${'['.repeat(100)}\\"${'{'.repeat(100)}"}\n`, 3));
  // A line's depth carries over from one piece to the next...
  t.false(scan.deeperThan('{"a":[[', 3));
  t.true(scan.deeperThan('[', 3));
  // ...and a newline starts again from nothing, also in the middle of a string.
  const fresh = new NestingScan();
  t.false(fresh.deeperThan('{"a":"[[[[\n', 3));
  t.false(fresh.deeperThan('{"a":[[]]}\n{"b":[[]]}\n', 3));
  t.true(fresh.deeperThan('[[[[]]]]\n', 3));
});

test("a worker killed while a handle the master sent it waits for its acknowledgement: the channel's end is followed all the same", async (t) => {
  // Node's 'disconnect' waits for that acknowledgement, which never comes: every such exit waited out
  // OUTPUT_AFTER_EXIT_MS before its restart, logged as an IPC channel held open.
  const child = fork('-e', ['setInterval(() => {}, 1000)'], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
  t.teardown(() => child.kill('SIGKILL'));
  await once(child, 'spawn');
  const host = { worker: { id: 1, kill: () => {} }, logs: { event: () => {} }, misuse: { handleClosed: () => {} } } as unknown as MessageHost;
  let settled = false;
  void followMessages(child, host).then(() => (settled = true));
  let disconnected = false;
  child.once('disconnect', () => (disconnected = true));
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  // Stopped, it cannot acknowledge the handle; then it dies with the handle unacknowledged.
  process.kill(child.pid!, 'SIGSTOP');
  child.send({ cmd: 'take-this' }, server);
  process.kill(child.pid!, 'SIGKILL');
  await once(child, 'exit');
  await waitFor(() => settled, { timeoutMs: 1500, what: "followMessages settled after the channel's end" });
  t.false(disconnected, "Node's 'disconnect' had not come (what the wait was on)");
});
