// The control plane against a fake ControlSource: real gRPC over real unix and TCP sockets.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { linkSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { createServer, connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { ControlClient } from '../../src/control/client.js';
import { connect, listClusters } from '../../src/control/discovery.js';
import { MAX_CALLS_PER_CONNECTION, MAX_CONNECTIONS } from '../../src/control/listener.js';
import { decodeStatus, encodeStatus } from '../../src/control/convert.js';
import { ensureRuntimeDir } from '../../src/control/paths.js';
import { startControlServer, type ControlServer, type ControlServerOptions } from '../../src/control/server.js';
import { RefusalLog } from '../../src/control/auth.js';
import { WRONG_TOKEN_BURST, WRONG_TOKEN_REFILL_MS, WrongTokenBudget } from '../../src/control/wrong-tokens.js';
import type { ClusterView } from '../../src/control/types.js';
import { ClusterdError } from '../../src/errors.js';
import { ExitCode } from '../../src/exit-codes.js';
import { waitFor } from '../helpers/cluster.js';
import { tempDir } from './helpers/dirs.js';
import { FakeSource, clusterStatus, sample, twoWorkers, worker } from './helpers/fake-source.js';

async function serve(t: Parameters<typeof tempDir>[0], { name = 'fake', dir = tempDir(t), source = new FakeSource(twoWorkers(name)), tcp, onRefused }: {
  name?: string;
  dir?: string;
  source?: FakeSource;
  tcp?: { host: string; port: number; token: string };
  onRefused?: ControlServerOptions['onRefused'];
} = {}): Promise<{ server: ControlServer; source: FakeSource; dir: string; client: ControlClient }> {
  const server = await startControlServer({ name, source, dir, tcp, onRefused });
  t.teardown(() => server.close());
  const client = new ControlClient({ transport: 'unix', socketPath: server.socketPath });
  t.teardown(() => client.close());
  return { server, source, dir, client };
}

/** A generic client for calls the Control service does not define. */
function rawClient(socketPath: string): grpc.Client {
  return new grpc.Client(`unix:${socketPath}`, grpc.credentials.createInsecure());
}

function rawUnary(client: grpc.Client, method: string, payload: Buffer): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(method, (buffer: Buffer) => buffer, (buffer: Buffer) => buffer, payload, (error) => resolve(error));
  });
}

test('Status returns the source\'s status, with history only when asked', async (t) => {
  const { source, client } = await serve(t);
  const plain = await client.status();
  const expected = decodeStatus(encodeStatus(source.current, { history: false }));
  t.deepEqual(plain, expected);
  t.is(plain.name, 'fake');
  t.is(plain.masterPid, 39_999);
  t.is(plain.workers.length, 2);
  t.deepEqual(plain.workers[1]!.sample!.lag, { mean: 40, p50: 3, p90: 120, p99: 210, max: 230 });
  t.is(plain.workers[1]!.sample!.elu, 0.93);
  t.deepEqual(plain.workers[0]!.sample!.resources, { TCPServerWrap: 1, TCPSocketWrap: 3, Timeout: 2 });
  t.deepEqual(plain.workers[0]!.sample!.loop, { iterationsPerSec: 950, eventsPerSec: 1200, eventsWaiting: 1 });
  t.deepEqual(plain.workers[0]!.history, []);
  t.deepEqual(plain.totals, source.current.totals);

  const withHistory = await client.status({ history: true });
  t.deepEqual(withHistory.workers[1]!.history, [{ time: 1_700_000_000_000, lagP99: 210, lagMax: 230, elu: 0.93, cpu: 14.5, rps: 310.5 }]);
});

test('a worker without a sample yet, or on a Node without loop counters, reads as null', async (t) => {
  const source = new FakeSource(clusterStatus('fresh', [worker(1, { state: 'starting' }, []), worker(2, {}, [sample({ loop: null })])]));
  const { client } = await serve(t, { name: 'fresh', source });
  const status = await client.status();
  t.is(status.workers[0]!.sample, null);
  t.is(status.workers[0]!.state, 'starting');
  t.is(status.workers[1]!.sample!.loop, null);
});

test('Watch sends the status at once, then the latest state after a burst of changes', async (t) => {
  const { source, client, server } = await serve(t);
  const seen: ClusterView[] = [];
  let arrived: () => void = () => {};
  const watch = client.watch({ history: true, minIntervalMs: 50 }, {
    onStatus: (status) => {
      seen.push(status);
      arrived();
    },
    onEnd: () => {},
  });
  const next = (count: number): Promise<void> =>
    seen.length >= count ? Promise.resolve() : new Promise((resolve) => (arrived = () => seen.length >= count && resolve()));

  await next(1);
  t.is(seen[0]!.workers.length, 2);
  t.is(seen[0]!.workers[0]!.history.length, 1);
  // Five changes within one tick: the next message carries the last of them, not a backlog.
  for (let n = 3; n <= 7; n++) source.update(clusterStatus('fake', Array.from({ length: n }, (_, i) => worker(i + 1))));
  await next(2);
  t.is(seen[1]!.workers.length, 7);

  watch.cancel();
  await waitFor(() => server.watchers === 0 && source.listeners.size === 0, { what: 'the watch to be released' });
  t.pass();
});

test('close() ends open Watch streams cleanly and removes the socket', async (t) => {
  const { server, client } = await serve(t);
  const ended = new Promise<ClusterdError | null>((resolve) => {
    client.watch({}, { onStatus: () => void server.close(), onEnd: resolve });
  });
  t.is(await ended, null);
  t.throws(() => statSync(server.socketPath), { code: 'ENOENT' });
});

test('a runtime directory clusterd creates is 0700, and the socket 0600', async (t) => {
  const dir = join(tempDir(t), 'run');
  const { server } = await serve(t, { dir });
  t.is(statSync(dir).mode & 0o777, 0o700);
  t.true(statSync(server.socketPath).isSocket());
  t.is(statSync(server.socketPath).mode & 0o777, 0o600);
  t.is(server.socketPath, join(dir, 'fake.sock'));
});

test('a symlink in place of the runtime directory is refused', (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'real'));
  symlinkSync(join(dir, 'real'), join(dir, 'link'));
  const error = t.throws(() => ensureRuntimeDir(join(dir, 'link')), { instanceOf: ClusterdError });
  t.regex(error.message, /symbolic link/);
});

test('garbage bytes on the socket do not disturb the server', async (t) => {
  const { server, client } = await serve(t);
  for (const payload of [randomBytes(4096), Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), randomBytes(3)]) {
    const socket = netConnect(server.socketPath);
    await once(socket, 'connect');
    socket.on('error', () => {});
    socket.end(payload);
    socket.resume();
    // The server answers garbage by closing the connection (a half-open one would also do).
    await Promise.race([once(socket, 'close'), waitFor(() => socket.readableEnded, { what: 'the server to hang up' })]);
    socket.destroy();
  }
  const status = await client.status();
  t.is(status.name, 'fake');
});

test('connections that send nothing cannot lock the operator out: past the cap the oldest goes, and calls per connection are bounded', async (t) => {
  const { server, client } = await serve(t);
  // A full cap that refused newcomers made every `clusterd status` and `stop` read "not running".
  const idle = await Promise.all(
    Array.from({ length: MAX_CONNECTIONS }, async () => {
      const socket = netConnect(server.socketPath);
      socket.on('error', () => {});
      socket.resume();
      await once(socket, 'connect');
      return socket;
    }),
  );
  t.teardown(() => idle.forEach((socket) => socket.destroy()));
  t.is((await client.status()).name, 'fake');
  await waitFor(() => idle[0]!.destroyed || idle[0]!.readableEnded, { what: 'the oldest idle connection to be closed' });

  // One connection may hold MAX_CALLS_PER_CONNECTION calls: unbounded, calls opened and never sent
  // their message held 1.5 GB of the master at 200,000.
  const session = http2.connect(`http://localhost`, { createConnection: () => netConnect(server.socketPath) });
  t.teardown(() => session.destroy());
  session.on('error', () => {});
  const [settings] = (await once(session, 'remoteSettings')) as [http2.Settings];
  t.is(settings.maxConcurrentStreams, MAX_CALLS_PER_CONNECTION);
});

test('unknown methods get UNIMPLEMENTED and undecodable requests INTERNAL; the server lives on', async (t) => {
  const { server, client } = await serve(t);
  const raw = rawClient(server.socketPath);
  t.teardown(() => raw.close());
  t.is((await rawUnary(raw, '/clusterd.v1.Control/Bogus', Buffer.alloc(0)))?.code, grpc.status.UNIMPLEMENTED);
  t.is((await rawUnary(raw, '/other.Service/Status', Buffer.alloc(0)))?.code, grpc.status.UNIMPLEMENTED);
  t.is((await rawUnary(raw, '/clusterd.v1.Control/Status', Buffer.from([0xff, 0xff, 0xff])))?.code, grpc.status.INTERNAL);
  t.is((await rawUnary(raw, '/clusterd.v1.Control/Status', Buffer.alloc(0))), null);
  t.is((await client.status()).name, 'fake');
});

test('a failing source becomes an INTERNAL status, not a crash', async (t) => {
  const { source, client } = await serve(t);
  source.failWith = new Error('boom');
  const error = await t.throwsAsync(client.status(), { instanceOf: ClusterdError });
  t.regex(error.message, /boom/);
  const ended = new Promise<ClusterdError | null>((resolve) => client.watch({}, { onStatus: () => {}, onEnd: resolve }));
  t.regex((await ended)?.message ?? '', /boom/);
  source.failWith = null;
  t.is((await client.status()).name, 'fake');
});

test('a second cluster with a running name is refused, naming the pid', async (t) => {
  const { dir } = await serve(t, { name: 'web' });
  const error = await t.throwsAsync(startControlServer({ name: 'web', source: new FakeSource(twoWorkers('web')), dir }), { instanceOf: ClusterdError });
  t.is(error.message, 'a cluster named web is already running (pid 39999)');
  t.is(error.exitCode, ExitCode.USAGE);
  // The first one is untouched.
  t.is((await connect({ name: 'web', dir })).status.name, 'web');
});

test('a stale socket (its master died) is removed and the name reused', async (t) => {
  const dir = tempDir(t);
  // A socket file nobody listens on: listen, keep a second link, close (which unlinks the first).
  const stale = createServer();
  stale.listen(join(dir, 'tmp.sock'));
  await once(stale, 'listening');
  linkSync(join(dir, 'tmp.sock'), join(dir, 'web.sock'));
  linkSync(join(dir, 'tmp.sock'), join(dir, 'ghost.sock'));
  stale.close();
  await once(stale, 'close');
  t.true(statSync(join(dir, 'web.sock')).isSocket());

  const { client } = await serve(t, { name: 'web', dir });
  t.is((await client.status()).name, 'web');
  // ghost.sock is stale too: not listed as running.
  t.deepEqual((await listClusters({ dir })).map((cluster) => cluster.name), ['web']);
});

test('something other than a socket at the name is refused in one line, and left as it was', async (t) => {
  const dir = tempDir(t);
  ensureRuntimeDir(dir);
  writeFileSync(join(dir, 'web.sock'), 'not a socket\n');
  const error = await t.throwsAsync(startControlServer({ name: 'web', source: new FakeSource(twoWorkers('web')), dir }), { instanceOf: ClusterdError });
  t.is(error.message, `${join(dir, 'web.sock')} exists and is not a socket; remove it to start a cluster named web`);
  t.is(error.exitCode, ExitCode.USAGE);
  t.is(readFileSync(join(dir, 'web.sock'), 'utf8'), 'not a socket\n');
  // Nothing left behind: no temporary socket beside it.
  t.deepEqual(readdirSync(dir), ['web.sock']);
});

test('connect finds the only cluster without a name, and explains every miss', async (t) => {
  const dir = tempDir(t);
  const none = await t.throwsAsync(connect({ dir }), { instanceOf: ClusterdError });
  t.is(none.message, `no running cluster found (looked in ${dir})`);
  t.is(none.exitCode, ExitCode.NOT_FOUND);
  const missingDir = join(dir, 'nope');
  t.is((await t.throwsAsync(connect({ dir: missingDir })))?.message, `no running cluster found (looked in ${missingDir})`);

  await serve(t, { name: 'api', dir });
  const only = await connect({ dir });
  t.teardown(() => only.client.close());
  t.is(only.status.name, 'api');

  const unknown = await t.throwsAsync(connect({ name: 'web', dir }), { instanceOf: ClusterdError });
  t.is(unknown.message, `no cluster named web is running (looked in ${dir}; running: api)`);
  t.is(unknown.exitCode, ExitCode.NOT_FOUND);
  const invalid = await t.throwsAsync(connect({ name: '../etc', dir }), { instanceOf: ClusterdError });
  t.is(invalid.exitCode, ExitCode.NOT_FOUND);

  await serve(t, { name: 'web', dir });
  const several = await t.throwsAsync(connect({ dir }), { instanceOf: ClusterdError });
  t.is(several.message, '2 clusters are running (api, web): name the one you mean');
  const named = await connect({ name: 'web', dir });
  t.teardown(() => named.client.close());
  t.is(named.status.name, 'web');
  t.deepEqual((await listClusters({ dir })).map((cluster) => [cluster.name, cluster.socketPath]), [
    ['api', join(dir, 'api.sock')],
    ['web', join(dir, 'web.sock')],
  ]);
});

test('TCP: the right token is accepted; none or a wrong one gets UNAUTHENTICATED', async (t) => {
  const token = randomBytes(16).toString('hex');
  const refused: unknown[] = [];
  const { server } = await serve(t, { tcp: { host: '127.0.0.1', port: 0, token }, onRefused: (...report) => refused.push(report) });
  const { port } = server.tcpAddress!;
  t.true(port > 0);

  const good = await connect({ control: { host: '127.0.0.1', port, token } });
  t.teardown(() => good.client.close());
  t.is(good.status.name, 'fake');

  for (const wrong of ['', 'nope', token.slice(1), `${token}x`]) {
    const client = new ControlClient({ transport: 'tcp', host: '127.0.0.1', port, token: wrong });
    t.teardown(() => client.close());
    const error = await t.throwsAsync(client.status(), { instanceOf: ClusterdError });
    t.is(error.exitCode, ExitCode.UNAUTHENTICATED, `token ${JSON.stringify(wrong)}`);
    const ended = new Promise<ClusterdError | null>((resolve) => client.watch({}, { onStatus: () => t.fail('a status without the token'), onEnd: resolve }));
    t.is((await ended)?.exitCode, ExitCode.UNAUTHENTICATED);
  }

  // No metadata at all, and an unknown method: still UNAUTHENTICATED first.
  const raw = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.teardown(() => raw.close());
  t.is((await rawUnary(raw, '/clusterd.v1.Control/Status', Buffer.alloc(0)))?.code, grpc.status.UNAUTHENTICATED);

  const misnamed = await t.throwsAsync(connect({ name: 'other', control: { host: '127.0.0.1', port, token } }), { instanceOf: ClusterdError });
  t.is(misnamed.message, `the cluster at 127.0.0.1:${port} is named fake, not other`);
  // The refusals leave a trace, the first at once (the rest are counted, said once a minute).
  t.deepEqual(refused, [['127.0.0.1', { missing: 1, wrong: 0, throttled: 0 }, true]]);
});

test('RefusalLog: a source\'s first refusal is said at once, then how many more once per interval, and nothing when there were none', async (t) => {
  const said: unknown[] = [];
  const log = new RefusalLog((...report) => said.push(report), 50);
  t.teardown(() => log.close());
  log.refused('10.0.0.1', 'wrong');
  log.refused('10.0.0.1', 'wrong');
  log.refused('10.0.0.1', 'missing');
  log.refused('10.0.0.2', 'missing');
  t.deepEqual(said, [
    ['10.0.0.1', { missing: 0, wrong: 1, throttled: 0 }, true],
    ['10.0.0.2', { missing: 1, wrong: 0, throttled: 0 }, true],
  ]);
  await waitFor(() => said.length === 3, { what: 'the count for 10.0.0.1' });
  t.deepEqual(said[2], ['10.0.0.1', { missing: 1, wrong: 1, throttled: 0 }, false]);
  // 10.0.0.2's interval ended with it (their timers were set in one tick) and was quiet: its next
  // refusal is a first again.
  log.refused('10.0.0.2', 'wrong');
  t.deepEqual(said.at(-1), ['10.0.0.2', { missing: 0, wrong: 1, throttled: 0 }, true]);
});

test('a TCP address that cannot be bound fails with a clear error and leaves no socket', async (t) => {
  const dir = tempDir(t);
  const blocker = createServer().listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  t.teardown(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const error = await t.throwsAsync(
    startControlServer({ name: 'fake', source: new FakeSource(twoWorkers()), dir, tcp: { host: '127.0.0.1', port, token: 't' } }),
    { instanceOf: ClusterdError },
  );
  t.is(error.exitCode, ExitCode.LISTEN_FAILED);
  t.regex(error.message, new RegExp(`--control 127\\.0\\.0\\.1:${port}`));
  t.deepEqual(await listClusters({ dir }), []);
  t.throws(() => statSync(join(dir, 'fake.sock')), { code: 'ENOENT' });
});

test('close() finishes even while a client holds an idle or half-sent connection', async (t) => {
  const { server } = await serve(t);
  const idle = netConnect(server.socketPath);
  const partial = netConnect(server.socketPath);
  await Promise.all([once(idle, 'connect'), once(partial, 'connect')]);
  idle.on('error', () => {});
  partial.on('error', () => {});
  partial.write('PRI * HTTP/2.0\r\n'); // the start of a preface, never finished
  t.teardown(() => {
    idle.destroy();
    partial.destroy();
  });
  await server.close();
  t.throws(() => statSync(server.socketPath), { code: 'ENOENT' });
  t.deepEqual(await listClusters({ dir: join(server.socketPath, '..') }), []);
});

test('past the cap of open Watch streams a new one is refused (BUSY); one that ends frees its place', async (t) => {
  const dir = tempDir(t);
  const source = new FakeSource(twoWorkers('capped'));
  const server = await startControlServer({ name: 'capped', source, dir, maxFollowStreams: 2 });
  t.teardown(() => server.close());
  const client = new ControlClient({ transport: 'unix', socketPath: server.socketPath });
  t.teardown(() => client.close());
  const open = (): { first: Promise<void>; ended: Promise<ClusterdError | null>; cancel: () => void } => {
    let arrived: () => void = () => {};
    const first = new Promise<void>((resolve) => (arrived = resolve));
    let onEnd: (error: ClusterdError | null) => void = () => {};
    const ended = new Promise<ClusterdError | null>((resolve) => (onEnd = resolve));
    const watch = client.watch({}, { onStatus: () => arrived(), onEnd: (error) => onEnd(error) });
    return { first, ended, cancel: () => watch.cancel() };
  };
  const [a, b] = [open(), open()];
  await Promise.all([a.first, b.first]);
  const refused = await open().ended;
  t.is(refused?.exitCode, ExitCode.BUSY);
  t.regex(refused!.message, /2 watch and logs streams are open/);
  a.cancel();
  await waitFor(() => server.watchers === 1, { what: 'the cancelled watch released' });
  const again = open();
  await again.first;
  again.cancel();
  b.cancel();
  await waitFor(() => server.watchers === 0, { what: 'every watch released' });
  t.pass();
});

test('WrongTokenBudget: a source may present 20 wrong tokens, then one a refill; other sources and right tokens spend nothing; the table is bounded', (t) => {
  let now = 0;
  const budget = new WrongTokenBudget({ burst: 20, refillMs: 1_000, maxSources: 3, now: () => now });
  for (let i = 0; i < 20; i++) {
    t.is(budget.waitMs('10.0.0.1'), 0, `wrong token ${i + 1} is checked`);
    budget.spend('10.0.0.1');
  }
  t.is(budget.waitMs('10.0.0.1'), 1_000, 'the 21st waits for a refill');
  t.is(budget.waitMs('10.0.0.2'), 0, 'another source is not slowed');
  now += 500;
  t.is(budget.waitMs('10.0.0.1'), 500);
  now += 500;
  t.is(budget.waitMs('10.0.0.1'), 0);
  budget.spend('10.0.0.1');
  t.is(budget.waitMs('10.0.0.1'), 1_000, 'one more, then it waits again');
  // Whole again after the burst's worth of quiet: forgotten.
  now += 20_000;
  t.is(budget.waitMs('10.0.0.1'), 0);
  t.is(budget.size, 0);
  // At most maxSources remembered: the least recently refused is forgotten.
  for (const source of ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']) budget.spend(source);
  t.is(budget.size, 3);
});

test('TCP: after 20 wrong tokens a source\'s calls are refused unchecked (RESOURCE_EXHAUSTED) until its budget refills; another right token then passes', async (t) => {
  const token = randomBytes(16).toString('hex');
  let now = 0;
  const refused: unknown[] = [];
  const server = await startControlServer({
    name: 'guessed',
    source: new FakeSource(twoWorkers('guessed')),
    dir: tempDir(t),
    tcp: { host: '127.0.0.1', port: 0, token },
    onRefused: (...report) => refused.push(report),
    wrongTokens: new WrongTokenBudget({ now: () => now }),
  });
  t.teardown(() => server.close());
  const { port } = server.tcpAddress!;
  const call = async (presented: string): Promise<string> => {
    const client = new ControlClient({ transport: 'tcp', host: '127.0.0.1', port, token: presented });
    try {
      await client.status();
      return 'ok';
    } catch (error) {
      return (error as ClusterdError).message.replace(`the cluster at 127.0.0.1:${port} refused the call: `, '').replace(`control call to 127.0.0.1:${port} failed: `, '');
    } finally {
      client.close();
    }
  };
  t.is(await call(token), 'ok');
  const answers: string[] = [];
  for (let i = 0; i < WRONG_TOKEN_BURST + 2; i++) answers.push(await call(`guess-${i}`));
  t.deepEqual(answers.slice(0, WRONG_TOKEN_BURST), Array<string>(WRONG_TOKEN_BURST).fill('wrong control token'));
  t.deepEqual(answers.slice(WRONG_TOKEN_BURST), Array<string>(2).fill('too many wrong control tokens from 127.0.0.1: its next call is checked in 1 s'));
  // Unchecked: the right token too, from that source, while it guesses.
  t.regex(await call(token), /^too many wrong control tokens/);
  now += WRONG_TOKEN_REFILL_MS;
  t.is(await call(token), 'ok', 'checked again once the budget refilled, and a right token spends none of it');
  t.is(await call(token), 'ok');
  t.deepEqual(refused, [['127.0.0.1', { missing: 0, wrong: 1, throttled: 0 }, true]]);
});
