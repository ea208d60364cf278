// Issue 2, point 3: an unmodified app's listen() is served by every worker, and servers behave
// as they would in a single process.
import test from 'ava';
import { execa } from 'execa';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, startCluster, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';
import { selfSignedCert } from '../helpers/tls.js';
import { reusePortSupport } from '../../src/master/balancers/shared.js';
import { freePort, getJson, holdUnixConnection, requestJson, tcpEcho, unixListenerHolders, untilEveryWorker, type Answer } from '../helpers/requests.js';
import dgram from 'node:dgram';

interface ServerReport {
  address: AddressInfo | null;
  listening: boolean;
  events: number;
  callbacks: number;
}
interface UnixAnswer extends Answer {
  address: string;
}
interface TwoServers extends Answer {
  worker: number;
  servers: { a: ServerReport; b: ServerReport };
}

test('listen(0) twice per worker: two ports, each shared by every worker, servers look normal', async (t) => {
  const cluster = await startCluster(fixture('two-servers.js'));
  t.teardown(() => cluster.stop());
  const first = await getJson<TwoServers>(cluster.port, '/');
  const portA = first.servers.a.address!.port;
  const portB = first.servers.b.address!.port;
  t.not(portA, portB);
  t.not(portA, 0);
  const ready = cluster.lines.find((line) => line.event === 'ready')!;
  t.deepEqual([...(ready.addresses as string[])].sort(), [`127.0.0.1:${portA}`, `127.0.0.1:${portB}`].sort());

  for (const port of [portA, portB]) {
    const answers = await untilEveryWorker(() => getJson<TwoServers>(port), cluster.pids, { what: `answers on port ${port}` });
    for (const [pid, answer] of answers) {
      t.is(answer.pid, pid);
      for (const [name, expected] of [['a', portA], ['b', portB]] as const) {
        const server = answer.servers[name];
        t.deepEqual(server.address, { address: '127.0.0.1', family: 'IPv4', port: expected }, `worker ${pid} server ${name}`);
        t.true(server.listening);
        t.is(server.events, 1, `one 'listening' event for server ${name}`);
        t.is(server.callbacks, 1, `one listen callback for server ${name}`);
      }
    }
  }
});

test('server.close() in one worker removes only that worker from the port', async (t) => {
  const cluster = await startCluster(fixture('two-servers.js'));
  t.teardown(() => cluster.stop());
  const { servers } = await getJson<TwoServers>(cluster.port);
  const portA = servers.a.address!.port;
  const portB = servers.b.address!.port;

  const closer = (await getJson<TwoServers>(portA, '/close-a')).pid;
  const survivor = cluster.pids.find((pid) => pid !== closer)!;
  t.true(cluster.pids.includes(closer));
  const closed = await cluster.waitForLine((line) => line.pid === closer && line.message.startsWith('closed a '));
  const report = JSON.parse(closed.message.slice('closed a '.length)) as TwoServers;
  t.false(report.servers.a.listening);
  t.is(report.servers.a.address, null);
  t.true(report.servers.b.listening);

  for (let i = 0; i < 30; i++) t.is((await getJson(portA)).pid, survivor, `request ${i} on the closed port`);
  // The closing worker still serves its other server, and stays up.
  await untilEveryWorker(() => getJson(portB), cluster.pids, { what: `answers on port ${portB}` });
  t.false(cluster.lines.some((line) => line.event === 'worker-exit'));
});

test('http, raw TCP and https servers are all served by every worker', async (t) => {
  const { key, cert } = await selfSignedCert(t);
  const cluster = await startCluster(fixture('protocols.js'), { env: { HTTPS_KEY: key, HTTPS_CERT: cert } });
  t.teardown(() => cluster.stop());
  const reports = await Promise.all(
    cluster.pids.map((pid) => cluster.waitForLine((line) => line.pid === pid && line.message.startsWith('ports '))),
  );
  const ports = reports.map((line) => JSON.parse(line.message.slice('ports '.length)) as Record<string, number>);
  t.deepEqual(ports[1], ports[0], 'every worker got the same ports');
  const { http, tcp, https } = ports[0]!;
  t.is(Object.keys(ports[0]!).length, 3);

  await untilEveryWorker(() => requestJson({ port: http! }), cluster.pids, { what: 'http answers' });
  const echoes = await untilEveryWorker(() => tcpEcho(tcp!, 'ping\n'), cluster.pids, { what: 'tcp echoes' });
  for (const { echo } of echoes.values()) t.is(echo, 'ping\n');
  await untilEveryWorker(() => requestJson({ port: https!, tls: true }), cluster.pids, { what: 'https answers' });
});

// A unix socket path is bound once, by the master, and shared as a port is (node:cluster does the
// same): an app behind nginx's `proxy_pass http://unix:/run/app.sock` runs on every worker.
const pathModes = ['fair', 'rr', 'least', 'sticky', 'shared', ...(reusePortSupport() === null ? ['reuseport'] : [])];
for (const balance of pathModes) {
  test(`--balance ${balance}: every worker listens on one unix socket path; the master removes it on stop`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'clusterd-unix-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const socketPath = join(dir, 'app.sock');
    const cluster = await startCluster(fixture('unix-shared.js'), { appArgs: [socketPath], flags: ['--balance', balance] });
    t.teardown(() => cluster.stop());
    t.deepEqual(cluster.lines.find((line) => line.event === 'ready')!.addresses, [socketPath]);
    const held: net.Socket[] = [];
    t.teardown(() => held.forEach((socket) => socket.destroy()));
    if (balance === 'shared' || balance === 'reuseport') {
      // The kernel picks who accepts (one worker may take them all): every worker holds the socket.
      t.deepEqual(unixListenerHolders(socketPath, [cluster.masterPid, ...cluster.pids]).sort(), [cluster.masterPid, ...cluster.pids].sort());
      const { answer, socket } = await holdUnixConnection<UnixAnswer>(socketPath);
      held.push(socket);
      t.true(cluster.pids.includes(answer.pid));
      t.is(answer.address, socketPath);
    } else {
      // Connections held open (at most 64) until every worker has one: the master's placement
      // (rr, least, sticky as rr) or fair's limit of open connections spreads them.
      const answers = new Map<number, UnixAnswer>();
      while (answers.size < cluster.pids.length && held.length < 64) {
        const { answer, socket } = await holdUnixConnection<UnixAnswer>(socketPath);
        held.push(socket);
        answers.set(answer.pid, answer);
      }
      t.deepEqual([...answers.keys()].sort(), [...cluster.pids].sort(), `${held.length} connections`);
      for (const answer of answers.values()) t.is(answer.address, socketPath, 'server.address() is the path');
    }
    held.forEach((socket) => socket.destroy());
    t.is(await cluster.stop(), 0);
    t.deepEqual(readdirSync(dir), [], 'the socket file and its spare link are gone');
  });
}

test('a unix socket path of each worker\'s own is served by that worker alone', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-unix-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cluster = await startCluster(fixture('unix-shared.js'), { appArgs: [join(dir, 'w{id}.sock')] });
  t.teardown(() => cluster.stop());
  t.deepEqual([...(cluster.lines.find((line) => line.event === 'ready')!.addresses as string[])].sort(), [join(dir, 'w1.sock'), join(dir, 'w2.sock')]);
  for (const [index, pid] of cluster.pids.entries()) {
    const socketPath = join(dir, `w${index + 1}.sock`);
    for (let i = 0; i < 3; i++) t.like(await requestJson<UnixAnswer>({ socketPath }), { worker: index + 1, pid, address: socketPath });
  }
});

for (const balance of ['fair', 'rr']) {
  test(`--balance ${balance}: a relative unix socket path means the worker's directory; readableAll and writableAll set its mode`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'clusterd-unix-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const cluster = await startCluster(fixture('unix-shared.js'), { appArgs: ['app.sock'], cwd: dir, env: { UNIX_ALL: '1' }, flags: ['--balance', balance] });
    t.teardown(() => cluster.stop());
    const socketPath = join(dir, 'app.sock');
    t.deepEqual(cluster.lines.find((line) => line.event === 'ready')!.addresses, [socketPath]);
    const stats = statSync(socketPath);
    t.true(stats.isSocket());
    t.is(stats.mode & 0o666, 0o666, `mode ${(stats.mode & 0o777).toString(8)}`);
    const answers = await untilEveryWorker(() => requestJson<UnixAnswer>({ socketPath }), cluster.pids, { what: 'answers on the unix socket' });
    for (const answer of answers.values()) t.is(answer.address, 'app.sock', 'server.address() is the path as the app gave it');
  });
}

test('an abstract unix socket (a NUL first, no file) is shared too, and named @name', async (t) => {
  const name = `clusterd-test-${process.pid}-${Date.now()}`;
  const cluster = await startCluster(fixture('unix-shared.js'), { appArgs: [`@${name}`] });
  t.teardown(() => cluster.stop());
  t.deepEqual(cluster.lines.find((line) => line.event === 'ready')!.addresses, [`@${name}`]);
  const held: net.Socket[] = [];
  t.teardown(() => held.forEach((socket) => socket.destroy()));
  const answers = new Map<number, UnixAnswer>();
  while (answers.size < cluster.pids.length && held.length < 64) {
    const { answer, socket } = await holdUnixConnection<UnixAnswer>(`\0${name}`);
    held.push(socket);
    answers.set(answer.pid, answer);
  }
  t.deepEqual([...answers.keys()].sort(), [...cluster.pids].sort(), `${held.length} connections`);
});

test('a stale unix socket file (its process was killed) is removed and bound again, with a line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-unix-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'app.sock');
  // A process that listens on the path, then dies by SIGKILL: the file stays, nobody listens.
  const killed = await execa(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`], { reject: false });
  t.is(killed.signal, 'SIGKILL');
  t.true(statSync(socketPath).isSocket());
  const cluster = await startCluster(fixture('unix-shared.js'), { appArgs: [socketPath] });
  t.teardown(() => cluster.stop());
  const removed = cluster.lines.find((line) => line.event === 'socket-stale-removed');
  t.truthy(removed, 'the removal is logged');
  t.true(removed!.message.includes(socketPath));
  await untilEveryWorker(() => requestJson({ socketPath }), cluster.pids, { what: 'answers on the path' });
});

test('workers that each remove the unix socket file before listening (code written for one process): the master puts the path back', async (t) => {
  const ctl = control(t);
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-unix-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'app.sock');
  const cluster = await startCluster(fixture('unix-shared.js'), { instances: 1, appArgs: [socketPath], flags: ['--name', 'unix-unlink'], env: { ...ctl.env, UNIX_UNLINK: '1' } });
  t.teardown(() => cluster.stop());
  t.is((await requestJson({ socketPath })).pid, cluster.pids[0]!);
  t.false(cluster.lines.some((line) => line.event?.startsWith('socket-path-')), 'the first worker removed nothing of the master\'s');
  const status = await ctl.run(['status', 'unix-unlink', '--json']);
  t.deepEqual((JSON.parse(String(status.stdout)) as { addresses: string[] }).addresses, [socketPath], 'status names where it listens');
  const listed = await ctl.run(['ls', '--json']);
  t.deepEqual((JSON.parse(String(listed.stdout)) as Array<{ addresses: string[] }>).map((cluster) => cluster.addresses), [[socketPath]], 'so does ls');
  // The second worker removes the master's socket file, then listens: the path is linked back to
  // the same socket, said once, and both workers serve it.
  t.is((await ctl.run(['scale', 'unix-unlink', '2'])).exitCode, 0);
  const restored = await cluster.waitForLine((line) => line.event === 'socket-path-restored');
  t.is(restored.worker, 2);
  t.true(restored.message.includes(`worker 2 removed the unix socket ${socketPath} before listening on it`), restored.message);
  t.true(statSync(socketPath).isSocket());
  const workers = (await ctl.workers('unix-unlink')).map((worker) => worker.pid);
  await untilEveryWorker(() => requestJson({ socketPath }), workers, { what: 'both workers serving the restored path' });
  // A reload runs the removal in every new worker: the path comes back each time, said once.
  t.is((await ctl.run(['reload', 'unix-unlink'])).exitCode, 0);
  const reloaded = (await ctl.workers('unix-unlink')).map((worker) => worker.pid);
  await untilEveryWorker(() => requestJson({ socketPath }), reloaded, { what: 'the new workers serving the path' });
  t.is(cluster.lines.filter((line) => line.event?.startsWith('socket-path-')).length, 1);
  t.is(await cluster.stop(), 0);
  t.deepEqual(readdirSync(dir), [], 'the socket file and its spare link are gone');
});

test('exclusive: true binds in the worker: the second worker on a fixed port gets EADDRINUSE', async (t) => {
  const port = await freePort();
  const cluster = await startCluster(fixture('exclusive.js'), { appArgs: [String(port)] });
  t.teardown(() => cluster.stop());
  const answers = await untilEveryWorker(() => getJson<Answer & { exclusive: string }>(cluster.port), cluster.pids);
  // The first answer may predate the bind's outcome: ask until neither is pending.
  await waitFor(async () => {
    if ([...answers.values()].every((answer) => answer.exclusive !== 'pending')) return true;
    const answer = await getJson<Answer & { exclusive: string }>(cluster.port);
    answers.set(answer.pid, answer);
    return false;
  });
  const outcomes = [...answers.values()].map((answer) => answer.exclusive).sort();
  t.deepEqual(outcomes, ['EADDRINUSE', 'listening']);
  const owner = [...answers.values()].find((answer) => answer.exclusive === 'listening')!.pid;
  for (let i = 0; i < 5; i++) t.deepEqual(await getJson(port), { pid: owner, server: 'exclusive' });
  // Listed where clients connect, as the worker's own (the master did not bind it: the other worker could not).
  const ready = cluster.lines.find((line) => line.event === 'ready')!;
  t.true((ready.addresses as string[]).includes(`127.0.0.1:${port}`));
  t.true(ready.message.includes(`127.0.0.1:${port} (exclusive: worker `), ready.message);
});

test('listen({ fd }) listens on the worker\'s own socket', async (t) => {
  const cluster = await startCluster(fixture('listen-fd.js'));
  t.teardown(() => cluster.stop());
  const ready = cluster.lines.find((line) => line.event === 'ready')!;
  t.deepEqual(ready.addresses, [], 'the master bound nothing');
  const ports = new Set<number>();
  for (const pid of cluster.pids) {
    const line = await cluster.waitForLine((output) => output.pid === pid && output.message.startsWith('fd-listening '));
    const { port } = JSON.parse(line.message.slice('fd-listening '.length)) as { port: number };
    ports.add(port);
    // Only this worker listens on its socket: every connection reaches it.
    for (let i = 0; i < 3; i++) {
      t.deepEqual(await getJson(port), { pid, address: { address: '127.0.0.1', family: 'IPv4', port } });
    }
  }
  t.is(ports.size, cluster.pids.length, 'one socket per worker');
});


// Node hands a stand-in listening handle to libuv as if it were a socket, and the worker dies of
// SIGSEGV (node:cluster's workers too): refused at the call instead, as Node refuses a handle it cannot send.
for (const balance of ['fair', 'rr']) {
  test(`--balance ${balance}: process.send(message, server) throws ERR_INVALID_HANDLE_TYPE and the worker lives on`, async (t) => {
    const cluster = await startCluster(fixture('sends-its-server.js'), { instances: 1, flags: ['--balance', balance] });
    t.teardown(() => cluster.stop());
    const answer = await getJson<{ pid: number; threw?: string; code?: string; message?: string }>(cluster.port, '/send');
    t.is(answer.threw, 'TypeError');
    t.is(answer.code, 'ERR_INVALID_HANDLE_TYPE');
    t.regex(answer.message ?? '', /listens through the clusterd master/);
    // The same process answers next, and the master saw no worker exit.
    t.is((await getJson<{ pid: number }>(cluster.port, '/')).pid, answer.pid);
    t.is(answer.pid, cluster.pids[0]!);
    t.false(cluster.lines.some((line) => line.event === 'worker-exit' || /SIGSEGV/.test(String(line.message ?? ''))));
  });
}

test("UDP: each worker binds its own sockets, even with node:cluster's `exclusive: false` (which used to never bind)", async (t) => {
  const cluster = await startCluster(fixture('udp-echo.js'), { instances: 1 });
  t.teardown(() => cluster.stop());
  const { ports } = await waitFor(async () => {
    const answer = await getJson<Answer & { ports: number[] }>(cluster.port, '/');
    return answer.ports.length === 2 ? answer : undefined;
  }, { timeoutMs: 10_000, what: 'both UDP sockets bound' });
  for (const port of ports) {
    const client = dgram.createSocket('udp4');
    t.teardown(() => client.close());
    const reply = once(client, 'message');
    client.send('hi', port, '127.0.0.1');
    const [message] = (await reply) as [Buffer];
    t.is(String(message), 'echo hi');
  }
  t.false(cluster.lines.some((line) => line.event === 'malformed-message'));
});

/** Sends `count` datagrams to 127.0.0.1:`port`, each from a socket of its own; the pid each answer names ('none': no answer in 5 s). */
function askOverUdp(port: number, count: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const client = dgram.createSocket('udp4');
      try {
        const reply = once(client, 'message', { signal: AbortSignal.timeout(5000) });
        client.send(`ping ${index}`, port, '127.0.0.1');
        const [message] = (await reply) as [Buffer];
        return String(message).split(' ')[0]!;
      } catch {
        return 'none';
      } finally {
        client.close();
      }
    }),
  );
}

test('UDP on a fixed port: the master binds it once and every worker receives on it, through reloads (each worker bound its own: the second and every other replacement failed with EADDRINUSE)', async (t) => {
  const probe = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
  const port = probe.address().port;
  probe.close();
  const cluster = await startCluster(fixture('udp-fixed-port.js'), { instances: 2, env: { UDP_PORT: String(port) } });
  t.teardown(() => cluster.stop());
  const bound = (): number[] => cluster.lines.filter((line) => line.message === `udp bound on ${port}`).map((line) => line.pid as number);
  await waitFor(() => bound().length === 2, { what: 'both workers bound' });
  for (let reload = 0; reload <= 2; reload++) {
    if (reload > 0) {
      const from = cluster.lines.length;
      cluster.process.kill('SIGHUP');
      await cluster.waitForLine((line) => line.event === 'operation' && line.who === 'SIGHUP' && cluster.lines.indexOf(line) >= from);
    }
    // An old worker still draining may answer too: it still reads its copy until it exits.
    const answers = await askOverUdp(port, 20);
    const workers = bound().map(String);
    t.deepEqual(answers.filter((pid) => !workers.includes(pid)), [], `after ${reload} reloads, answered by ${answers.join(' ')}; workers: ${workers.join(' ')}`);
  }
  t.is(bound().length, 6);
  t.deepEqual(cluster.lines.filter((line) => line.event === 'worker-exit' || line.stream === 'stderr'), []);
});

test('an app that serves UDP alone (no server listens) is ready once its socket is bound: it failed its boot at --listen-timeout', async (t) => {
  const probe = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
  const port = probe.address().port;
  probe.close();
  const cluster = await startCluster(fixture('udp-only.js'), { instances: 2, env: { UDP_PORT: String(port) }, flags: ['--listen-timeout', '5s'] });
  t.teardown(() => cluster.stop());
  t.is(cluster.pids.length, 2);
  const answers = await askOverUdp(port, 10);
  t.deepEqual(answers.filter((pid) => !cluster.pids.map(String).includes(pid)), [], answers.join(' '));
});

