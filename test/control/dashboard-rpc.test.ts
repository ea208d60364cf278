// The Dashboard rpc against a fake feed, over a real unix socket: the snapshot then updates, a
// message larger than a chunk arrives whole, at most MAX_DASHBOARD_STREAMS streams, the master's
// close ends them with OK; a master without a feed answers UNIMPLEMENTED.
import test from 'ava';
import { ControlClient } from '../../src/control/client.js';
import { chunks, DASHBOARD_CHUNK_CHARS, MAX_DASHBOARD_STREAMS } from '../../src/control/dashboard-handler.js';
import { startControlServer } from '../../src/control/server.js';
import type { DashboardSource, FeedMessage, FeedSnapshot } from '../../src/dashboard/feed.js';
import { parseFeedMessage } from '../../src/dashboard/schema.js';
import type { ClusterdError } from '../../src/errors.js';
import { waitFor } from '../helpers/cluster.js';
import { snapshot, update } from '../dashboard/helpers/messages.js';
import { tempDir } from './helpers/dirs.js';
import { FakeSource, twoWorkers } from './helpers/fake-source.js';

class FakeFeed implements DashboardSource {
  readonly listeners = new Set<(message: FeedMessage) => void>();
  constructor(public current: FeedSnapshot = snapshot()) {}
  snapshot(): FeedSnapshot {
    return this.current;
  }
  subscribe(listener: (message: FeedMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  push(message: FeedMessage): void {
    for (const listener of this.listeners) listener(message);
  }
}

async function serve(t: Parameters<typeof tempDir>[0], dashboard?: DashboardSource) {
  const server = await startControlServer({ name: 'fake', source: new FakeSource(twoWorkers('fake')), dir: tempDir(t), dashboard });
  t.teardown(() => server.close());
  const client = new ControlClient({ transport: 'unix', socketPath: server.socketPath });
  t.teardown(() => client.close());
  return { server, client };
}

/** Follows the stream, collecting messages and how it ended. */
function follow(client: ControlClient) {
  const messages: string[] = [];
  let end: ClusterdError | null | undefined;
  const subscription = client.dashboard({ onMessage: (json) => messages.push(json), onEnd: (error) => (end = error) });
  return { messages, subscription, ended: () => end };
}

test('chunks: pieces of at most DASHBOARD_CHUNK_CHARS, the last marked, never inside a surrogate pair', (t) => {
  t.deepEqual(chunks('{}'), [{ json: '{}', end: true }]);
  const long = `"${'a'.repeat(DASHBOARD_CHUNK_CHARS - 2)}😀${'b'.repeat(10)}"`;
  const pieces = chunks(long);
  t.is(pieces.length, 2);
  t.is(pieces[0]!.json.length, DASHBOARD_CHUNK_CHARS - 1, 'the pair moves whole to the next piece');
  t.deepEqual(pieces.map((piece) => piece.end), [false, true]);
  t.is(pieces.map((piece) => piece.json).join(''), long);
});

test('the snapshot at once, then each update; a message bigger than a chunk arrives whole', async (t) => {
  const feed = new FakeFeed();
  const { client } = await serve(t, feed);
  const stream = follow(client);
  t.teardown(() => stream.subscription.cancel());
  await waitFor(() => stream.messages.length === 1 && feed.listeners.size === 1, { what: 'the snapshot' });
  t.deepEqual(parseFeedMessage(stream.messages[0]!), snapshot());

  // 64 workers with a full window: megabytes of JSON, several pieces.
  const big = update();
  const bucket = big.workers[0]!.buckets[0]!;
  big.workers = Array.from({ length: 64 }, (_, i) => ({ ...big.workers[0]!, id: i + 1, buckets: Array.from({ length: 450 }, (_, b) => ({ ...bucket, t: b * 2000 })) }));
  t.true(JSON.stringify(big).length > 2 * DASHBOARD_CHUNK_CHARS);
  feed.push(big);
  await waitFor(() => stream.messages.length === 2, { what: 'the update' });
  t.deepEqual(parseFeedMessage(stream.messages[1]!), big);

  stream.subscription.cancel();
  await waitFor(() => feed.listeners.size === 0, { what: 'the master to stop following for it' });
});

test(`at most ${MAX_DASHBOARD_STREAMS} streams: the next is BUSY; closing the master ends them with OK`, async (t) => {
  const feed = new FakeFeed();
  const { server, client } = await serve(t, feed);
  const streams = Array.from({ length: MAX_DASHBOARD_STREAMS }, () => follow(client));
  await waitFor(() => feed.listeners.size === MAX_DASHBOARD_STREAMS, { what: 'every stream open' });
  const refused = follow(client);
  await waitFor(() => refused.ended() !== undefined, { what: 'the refusal' });
  t.is(refused.ended()?.code, 'ERR_CLUSTERD_BUSY');
  t.regex(refused.ended()!.message, new RegExp(`${MAX_DASHBOARD_STREAMS} dashboards follow this cluster already`));
  t.is(refused.messages.length, 0);

  await server.close();
  await waitFor(() => streams.every((stream) => stream.ended() === null), { what: 'every stream ended with OK' });
  t.is(feed.listeners.size, 0);
});

test('a master without a feed answers UNIMPLEMENTED', async (t) => {
  const { client } = await serve(t);
  const stream = follow(client);
  await waitFor(() => stream.ended() !== undefined, { what: 'the refusal' });
  t.is(stream.ended()?.code, 'ERR_CLUSTERD_UNIMPLEMENTED');
});

test('a client that names no marker kinds (older than the field) is sent none of the kinds added since: its check refused the whole message', async (t) => {
  const withListening = snapshot();
  withListening.markers = [
    { id: 1, seq: 1, time: withListening.now - 1000, kind: 'restart', worker: 1, text: 'worker 1 restarted' },
    { id: 2, seq: 2, time: withListening.now - 500, kind: 'listening', worker: 2, text: 'worker 2 closed every server' },
  ] as FeedSnapshot['markers'];
  const { client } = await serve(t, new FakeFeed(withListening));
  const kinds = async (markerKinds?: readonly string[]): Promise<string[]> => {
    const messages: string[] = [];
    const subscription = client.dashboard({ onMessage: (json) => messages.push(json), onEnd: () => {} }, markerKinds ? { markerKinds } : {});
    t.teardown(() => subscription.cancel());
    await waitFor(() => messages.length > 0, { what: 'the snapshot' });
    return (JSON.parse(messages[0]!) as FeedSnapshot).markers.map((marker) => marker.kind);
  };
  t.deepEqual(await kinds([]), ['restart']);
  t.deepEqual(await kinds(), ['restart', 'listening']);
});

test('totals.ready on the stream counts blocked workers too, as older mirrors read it; the mirror\'s check takes them out again', async (t) => {
  const oneBlocked = snapshot();
  oneBlocked.workers = [{ ...oneBlocked.workers[0]!, blockedMs: 1500 }, oneBlocked.workers[1]!];
  oneBlocked.totals = { ...oneBlocked.totals, ready: 1, blocked: 1 };
  const { client } = await serve(t, new FakeFeed(oneBlocked));
  const stream = follow(client);
  t.teardown(() => stream.subscription.cancel());
  await waitFor(() => stream.messages.length > 0, { what: 'the snapshot' });
  t.like((JSON.parse(stream.messages[0]!) as FeedSnapshot).totals, { ready: 2, blocked: 1 });
  t.like(parseFeedMessage(stream.messages[0]!).totals, { ready: 1, blocked: 1 });
});
