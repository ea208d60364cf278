// Logs (recent lines, follow, slow readers) and the blocked-loop report in Status, over real gRPC
// against fake operations.
import test from 'ava';
import type { ControlClient, Subscription } from '../../src/control/client.js';
import { backlog, MAX_BACKLOG, type Queued } from '../../src/control/logs-handler.js';
import type { LogView } from '../../src/control/types.js';
import { ClusterdError } from '../../src/errors.js';
import { ExitCode } from '../../src/exit-codes.js';
import { clipLine, KEPT_LINE_CHARS, keptLine } from '../../src/master/logs.js';
import { waitFor } from '../helpers/cluster.js';
import { SPIN_STACK, logEntry } from './helpers/fake-operations.js';
import { serveOps } from './helpers/serve.js';

/** Reads a Logs call to its end. */
function readLogs(client: ControlClient, request: Parameters<ControlClient['logs']>[0]): Promise<LogView[]> {
  return new Promise((resolve, reject) => {
    const entries: LogView[] = [];
    client.logs(request, { onEntry: (entry) => entries.push(entry), onEnd: (error) => (error ? reject(error) : resolve(entries)) });
  });
}

/** Follows a Logs call; `entries` fills as lines arrive. */
function follow(client: ControlClient, request: Parameters<ControlClient['logs']>[0]): { entries: LogView[]; ended: Promise<ClusterdError | null>; subscription: Subscription } {
  const entries: LogView[] = [];
  let subscription: Subscription | null = null;
  const ended = new Promise<ClusterdError | null>((resolve) => {
    subscription = client.logs({ ...request, follow: true }, { onEntry: (entry) => entries.push(entry), onEnd: resolve });
  });
  return { entries, ended, subscription: subscription! };
}

test('Logs sends the latest `lines` lines, oldest first, of every worker or one', async (t) => {
  const { client, ops } = await serveOps(t);
  for (let i = 1; i <= 6; i++) ops.log(logEntry((i % 2) + 1, `line ${i}`, i === 5 ? { stream: 'stderr' } : {}));
  const last3 = await readLogs(client, { lines: 3 });
  t.deepEqual(last3.map((entry) => `[w${entry.worker}] ${entry.message}`), ['[w1] line 4', '[w2] line 5', '[w1] line 6']);
  t.deepEqual(last3[1], { time: '2024-01-02T03:04:05.000Z', worker: 2, pid: 40_002, stream: 'stderr', message: 'line 5' });
  t.deepEqual((await readLogs(client, { lines: 100, worker: 2 })).map((entry) => entry.message), ['line 1', 'line 3', 'line 5']);
  t.deepEqual(await readLogs(client, { lines: 0 }), []);
});

test('Logs for a worker id never seen is NOT_FOUND; one that is gone but has lines is fine', async (t) => {
  const { client, ops } = await serveOps(t);
  const error = await t.throwsAsync(readLogs(client, { lines: 10, worker: 7 }), { instanceOf: ClusterdError });
  t.is(error.exitCode, ExitCode.NOT_FOUND);
  t.is(error.message, 'no worker 7 in cluster api (workers: 1, 2)');
  ops.log(logEntry(3, 'from a worker scaled away'));
  t.deepEqual((await readLogs(client, { lines: 10, worker: 3 })).map((entry) => entry.message), ['from a worker scaled away']);
});

test('Logs follow: recent lines, then new ones of the chosen worker; cancelling unsubscribes', async (t) => {
  const { client, ops, server } = await serveOps(t);
  ops.log(logEntry(1, 'before'));
  ops.log(logEntry(2, 'before, other worker'));
  const { entries, subscription } = follow(client, { lines: 10, worker: 1 });
  await waitFor(() => entries.length === 1 && ops.logListeners.size === 1, { what: 'the recent line' });
  ops.log(logEntry(2, 'not for us'));
  ops.log(logEntry(1, 'after'));
  await waitFor(() => entries.length === 2, { what: 'the new line' });
  t.deepEqual(entries.map((entry) => entry.message), ['before', 'after']);

  subscription.cancel();
  await waitFor(() => ops.logListeners.size === 0 && server.streams === 0, { what: 'the follower to be released' });
  t.pass();
});

test('Logs follow ends with OK when the master stops', async (t) => {
  const { client, ops, server } = await serveOps(t);
  const { ended } = follow(client, { lines: 0 });
  await waitFor(() => ops.logListeners.size === 1, { what: 'the follower' });
  await server.close();
  t.is(await ended, null);
  t.is(ops.logListeners.size, 0);
});

test('a follower gets every line clipped at KEPT_LINE_CHARS, as the recent lines are, whether it keeps up or not', async (t) => {
  const { client, ops } = await serveOps(t);
  const long = 'y'.repeat(KEPT_LINE_CHARS + 100);
  const clip = [clipLine(long).length, 'yyyyy... [100 more characters]'];
  // The recent lines come clipped from the master's ring; more of them than the stream takes at once,
  // so some wait in this reader's queue, and are not clipped a second time there.
  const recent = 50;
  for (let i = 0; i < recent; i++) ops.log(keptLine(logEntry(1, long)));
  const { entries, subscription } = follow(client, { lines: recent });
  t.teardown(() => subscription.cancel());
  await waitFor(() => entries.length === recent && ops.logListeners.size === 1, { what: 'the recent lines' });
  // Nothing waits for this reader now, so a new line goes out at once: clipped all the same.
  ops.log(logEntry(1, long));
  ops.log(logEntry(1, 'short'));
  await waitFor(() => entries.length === recent + 2, { what: 'the new lines' });
  // Compared by length and ending: a diff of 16 KiB lines would bury the failure.
  const expected = [...Array.from({ length: recent + 1 }, () => clip), [5, 'short']];
  t.deepEqual(entries.map((entry) => [entry.message.length, entry.message.slice(-30)]), expected);
});

test('a follower that falls behind loses lines, not the master\'s memory, and is told how many', async (t) => {
  const { client, ops } = await serveOps(t);
  const { entries, subscription } = follow(client, { lines: 0 });
  t.teardown(() => subscription.cancel());
  await waitFor(() => ops.logListeners.size === 1, { what: 'the follower' });
  // Written in one go, far faster than any reader: most of the burst cannot be kept.
  const burst = MAX_BACKLOG * 5;
  for (let i = 0; i < burst; i++) ops.log(logEntry(1, `${i} ${'x'.repeat(200)}`));
  const dropped = (): number =>
    entries.filter((entry) => entry.worker === 0).reduce((sum, entry) => sum + Number(/(\d+) lines? dropped/.exec(entry.message)?.[1] ?? 0), 0);
  const received = (): LogView[] => entries.filter((entry) => entry.worker !== 0);
  await waitFor(() => received().length + dropped() === burst, { what: 'every line to be received or counted' });
  t.true(dropped() > 0);
  t.true(received().length >= MAX_BACKLOG);
  // What does arrive is in order, the note in its place: after the lines kept before the gap.
  const numbers = received().map((entry) => Number(entry.message.split(' ')[0]));
  t.deepEqual(numbers, [...numbers].sort((a, b) => a - b));
  t.is(entries.at(-1)!.worker, 0);
  t.is(entries.at(-1)!.stream, 'stderr');

  // The stream goes on normally afterwards.
  ops.log(logEntry(1, 'caught up'));
  await waitFor(() => entries.at(-1)?.message === 'caught up', { what: 'a line after the gap' });
  t.pass();
});

test('a reader behind, taking lines as more come: one note per fall behind, not one per line it made room for', (t) => {
  const queue: Queued[] = [];
  const notes = (): number[] => queue.flatMap((item) => ('dropped' in item ? [item.dropped] : []));
  for (let i = 0; i < MAX_BACKLOG + 10; i++) backlog(queue, logEntry(1, String(i)));
  t.deepEqual(notes(), [10]);
  // The reader takes two lines, three come, and so on: still the one gap.
  for (let i = 0; i < 50; i++) {
    queue.splice(0, 2);
    for (let j = 0; j < 3; j++) backlog(queue, logEntry(1, 'more'));
  }
  t.deepEqual(notes(), [160]);
  // Once it has taken half, lines are kept again, after the note.
  queue.splice(0, queue.length - MAX_BACKLOG / 2);
  backlog(queue, logEntry(1, 'kept'));
  t.deepEqual(notes(), [160]);
  t.is((queue.at(-1) as { message: string }).message, 'kept');
});

test('Status and Watch carry each worker\'s last blocked-loop report', async (t) => {
  const { client, ops } = await serveOps(t);
  t.is((await client.status()).workers[0]!.lastBlocked, null);
  ops.blocked.set(1, { ...SPIN_STACK, time: 1_700_000_123_000, blockedMs: 1234.5, pid: 4242 });
  const [one, two] = (await client.status()).workers;
  t.deepEqual(one!.lastBlocked, { time: 1_700_000_123_000, blockedMs: 1234.5, frames: SPIN_STACK.stack, pid: 4242 });
  t.is(two!.lastBlocked, null);
  const watched = await new Promise<number | undefined>((resolve) => {
    const subscription = client.watch({}, {
      onStatus: (status) => {
        subscription.cancel();
        resolve(status.workers[0]!.lastBlocked?.blockedMs);
      },
      onEnd: () => resolve(undefined),
    });
  });
  t.is(watched, 1234.5);
});
