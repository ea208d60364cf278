// Issue 5: least, sticky and reuseport on real workers.
import test from 'ava';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, get, launch, startCluster, waitFor } from '../../helpers/cluster.js';
import { rendezvous } from '../../../src/master/balancers/choose.js';
import { WAIT_FOR_ID_MS } from '../../../src/master/balancers/dispatch.js';
import { control } from '../../helpers/control.js';
import { reusePortMigration, reusePortSupport } from '../../../src/master/balancers/shared.js';
import { ExitCode } from '../../../src/exit-codes.js';
import { STALL_MS } from '../../../src/master/worker-fork.js';

/** GET / on a new connection from `localAddress` (any 127.x.y.z is this machine); resolves with the pid that answered. */
function pidFrom(port: number, { localAddress = '127.0.0.1', path = '/', timeoutMs = 5000 } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path, localAddress, agent: false, timeout: timeoutMs }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve((JSON.parse(body) as { pid: number }).pid));
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${path} from ${localAddress} timed out`)));
    request.on('error', reject);
  });
}

/** How long GET /spin blocks the worker here (busy-route.js's SPIN_MS): longer than the wait for the stall and 12 requests on a loaded machine, shorter than --watchdog. */
const SPIN_MS = 20_000;

test('least: a worker whose loop is blocked receives no new connections while blocked', async (t) => {
  const ctl = control(t);
  // --report-blocked past STALL_MS: once its report of the block is in, the master has judged the loop
  // stalled (at STALL_MS of silence, in the same check or an earlier one), which is what least routes by.
  const flags = ['--name', 'least', '--balance', 'least', '--watchdog', '30s', '--report-blocked', `${STALL_MS + 100}ms`];
  const cluster = await startCluster(fixture('busy-route.js'), { instances: 2, flags, env: { ...ctl.env, SPIN_MS: String(SPIN_MS) } });
  t.teardown(() => cluster.stop('SIGKILL'));
  // Both workers have answered once (and sent a stats sample), so neither is new to the master.
  await waitFor(async () => new Set(await Promise.all(Array.from({ length: 6 }, () => pidFrom(cluster.port)))).size === 2, { what: 'both workers answering' });

  const blocked = await pidFrom(cluster.port, { path: '/spin' });
  const blockedAt = Date.now();
  const other = cluster.pids.find((pid) => pid !== blocked)!;
  // The stall seen by the master: the spin's site reported, caught at least STALL_MS into the silence.
  await waitFor(
    async () =>
      (await ctl.workers('least')).some(
        (worker) => worker.pid === blocked && ((worker as { blockedSites?: Array<{ url: string; maxMs: number }> }).blockedSites ?? []).some((site) => site.url.endsWith('/busy-route.js') && site.maxMs >= STALL_MS),
      ),
    { what: 'the spinning worker reported blocked' },
  );
  t.log(`the stall reported ${Date.now() - blockedAt} ms after /spin answered`);

  const answeredBy: number[] = [];
  for (let i = 0; i < 12; i++) answeredBy.push(await pidFrom(cluster.port, { timeoutMs: 4000 }));
  t.true(Date.now() - blockedAt < SPIN_MS, 'all answered while the worker was still blocked');
  t.deepEqual(new Set(answeredBy), new Set([other]));
});

test('sticky: one client address always reaches the same pid; scaling down moves only the leaving worker\'s addresses', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--name', 'sticky', '--balance', 'sticky'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const addresses = Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 1}`);
  const owner = new Map<string, number>();
  for (const address of addresses) {
    const pids = new Set<number>();
    for (let i = 0; i < 4; i++) pids.add(await pidFrom(cluster.port, { localAddress: address }));
    t.is(pids.size, 1, `${address} reached ${[...pids].join(', ')}`);
    owner.set(address, [...pids][0]!);
  }
  t.is(new Set(owner.values()).size, 2, 'the addresses spread over both workers');

  const workers = await ctl.workers('sticky');
  const leaving = workers.find((worker) => worker.id === 2)!.pid;
  const staying = workers.find((worker) => worker.id === 1)!.pid;
  const scaled = await ctl.run(['scale', 'sticky', '1']);
  t.is(scaled.exitCode, 0, String(scaled.stderr));
  for (const address of addresses) {
    const now = await pidFrom(cluster.port, { localAddress: address });
    t.is(now, staying, `${address} was on ${owner.get(address) === leaving ? 'the leaving' : 'the staying'} worker`);
  }
});

/** A sticky --wait-ready cluster of wait-ready.js (each worker ready on SIGUSR2) with worker 1 ready: its port and both pids. */
async function stickyWithOneReady(t: { teardown(fn: () => Promise<void>): void }): Promise<{ cluster: ReturnType<typeof launch>; port: number; first: number; second: number }> {
  const cluster = launch(['start', fixture('wait-ready.js'), '-i', '2', '--log-format', 'json', '--wait-ready', '--balance', 'sticky']);
  t.teardown(async () => {
    cluster.process.kill('SIGKILL');
    await cluster.exited;
  });
  const listening = await Promise.all([1, 2].map((worker) => cluster.waitForLine((line) => line.worker === worker && line.message.startsWith('listening '))));
  const [first, second] = listening.map((line) => line.pid as number);
  process.kill(first!, 'SIGUSR2');
  await cluster.waitForLine((line) => line.pid === first && line.message === 'signalled');
  return { cluster, port: Number(listening[0]!.message.split(' ')[1]), first: first!, second: second! };
}

/** A loopback address that rendezvous hashing over ids 1 and 2 gives to `id`. */
const addressOf = (id: number): string => Array.from({ length: 64 }, (_, i) => `127.0.0.${i + 1}`).find((address) => rendezvous(address, [1, 2]) === id)!;

test('sticky: a client address whose worker is not ready yet (--wait-ready) waits for it rather than going to another worker', async (t) => {
  const { cluster, port, first, second } = await stickyWithOneReady(t);
  let answer: number | null = null;
  const waiting = pidFrom(port, { localAddress: addressOf(2), timeoutMs: WAIT_FOR_ID_MS + 10_000 }).then((pid) => (answer = pid));
  // The other worker's addresses are served meanwhile; hashed only over the workers accepting, the
  // address of worker 2 went to worker 1 here, and came back to worker 2 once it was ready.
  t.is(await pidFrom(port, { localAddress: addressOf(1) }), first);
  t.is(answer, null, 'not answered while its worker is not ready');
  process.kill(second, 'SIGUSR2');
  t.is(await waiting, second);
  t.is(await pidFrom(port, { localAddress: addressOf(2) }), second);
  t.false(cluster.lines.some((line) => line.event === 'sticky-fallback'));
});

test('sticky: a client address whose worker stays not ready goes to another worker after a bounded wait, and the log says so once', async (t) => {
  const { cluster, port, first } = await stickyWithOneReady(t);
  const answers = await Promise.all([1, 2].map(() => pidFrom(port, { localAddress: addressOf(2), timeoutMs: WAIT_FOR_ID_MS + 10_000 })));
  t.deepEqual(answers, [first, first]);
  // Then, until it is ready, its addresses go to another worker without waiting each time.
  t.is(await pidFrom(port, { localAddress: addressOf(2), timeoutMs: WAIT_FOR_ID_MS / 2 }), first);
  const said = cluster.lines.filter((line) => line.event === 'sticky-fallback');
  t.is(said.length, 1);
  t.regex(said[0]!.message, /^sticky: worker 2 did not accept within 5 s/);
});

test('reuseport: every worker binds its own socket (Node >= 22.12), or one clear error', async (t) => {
  const ctl = control(t);
  const unsupported = reusePortSupport();
  if (unsupported) {
    const result = await ctl.run(['start', fixture('hello.js'), '-i', '2', '--balance', 'reuseport']);
    t.is(result.exitCode, ExitCode.USAGE);
    t.is(String(result.stderr).trim(), `clusterd: ${unsupported}`);
    return;
  }
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--name', 'rp', '--balance', 'reuseport'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  // The kernel picks a socket by a hash of the client's address and port: new connections reach both.
  const seen = await waitFor(async () => {
    const pids = new Set(await Promise.all(Array.from({ length: 16 }, () => pidFrom(cluster.port))));
    return pids.size === 2 ? pids : null;
  }, { what: 'both workers answering' });
  t.deepEqual([...seen].sort(), [...cluster.pids].sort());
  // Without the kernel's migration of a closing socket's queue, a reload under load resets connections: said at start.
  const warned = cluster.lines.some((line) => line.event === 'reuseport-resets');
  t.is(warned, reusePortMigration() === 'off');
});

test('reusePortMigration reads net.ipv4.tcp_migrate_req: on only when it is 1', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-sysctl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const [text, expected] of [['1\n', 'on'], ['0\n', 'off']] as const) {
    writeFileSync(join(dir, 'tcp_migrate_req'), text);
    t.is(reusePortMigration(join(dir, 'tcp_migrate_req')), expected);
  }
  t.is(reusePortMigration(join(dir, 'missing')), 'off', 'a kernel before 5.14 has no such setting');
});

test('rr: connections sent while a worker has not yet acknowledged the last one are queued, not lost: the worker keeps its place', async (t) => {
  // One worker on three ports, its loop blocked: each port's balancer sends it a connection, and
  // Node queues each handle behind the one not yet acknowledged (send() says false from the second
  // queued on). Read as a closed channel, the worker was dropped from that port for good, and the
  // port's later connections waited for nobody.
  const cluster = await startCluster(fixture('three-ports-block.js'), { instances: 1, flags: ['--balance', 'rr', '--watchdog', '30s'] });
  t.teardown(() => cluster.stop('SIGKILL'));
  const ports = (cluster.lines.find((line) => line.event === 'ready')!.addresses as string[]).map((address) => Number(address.split(':').pop()));
  t.is(ports.length, 3);
  const blocking = get(ports[0]!, '/block');
  await cluster.waitForLine((line) => line.message === 'blocking');
  // While the loop is blocked, a new connection on each port; all answered once it turns.
  const during = await Promise.all(ports.map((port) => get(port)));
  await blocking;
  t.deepEqual(during.map((response) => response.status), [200, 200, 200]);
  // And after it: the worker still takes every port's connections.
  for (const port of ports) t.is((await get(port, '/', { timeoutMs: 5000 })).status, 200);
});
