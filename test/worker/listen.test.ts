// Issue 2, point 3: an unmodified app's listen() is served by every worker, and servers behave
// as they would in a single process.
import test from 'ava';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, startCluster, waitFor } from '../helpers/cluster.js';
import { selfSignedCert } from '../helpers/tls.js';
import { getJson, requestJson, tcpEcho, untilEveryWorker, type Answer } from '../helpers/requests.js';

interface ServerReport {
  address: AddressInfo | null;
  listening: boolean;
  events: number;
  callbacks: number;
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

test('a unix socket path is bound by the worker itself', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-unix-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cluster = await startCluster(fixture('unix-socket.js'), { appArgs: [dir] });
  t.teardown(() => cluster.stop());
  for (const [index, pid] of cluster.pids.entries()) {
    const socketPath = join(dir, `w${index + 1}.sock`);
    for (let i = 0; i < 3; i++) {
      t.deepEqual(await requestJson({ socketPath }), { worker: index + 1, pid, address: socketPath });
    }
  }
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
  const ready = cluster.lines.find((line) => line.event === 'ready')!;
  t.false((ready.addresses as string[]).includes(`127.0.0.1:${port}`), 'the master did not bind the exclusive port');
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

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
