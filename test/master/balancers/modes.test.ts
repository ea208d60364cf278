// Issue 5: least, sticky and reuseport on real workers.
import test from 'ava';
import http from 'node:http';
import { fixture, startCluster, waitFor } from '../../helpers/cluster.js';
import { control } from '../../helpers/control.js';
import { reusePortSupport } from '../../../src/master/balancers/shared.js';
import { ExitCode } from '../../../src/exit-codes.js';

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

test('least: a worker whose loop is blocked receives no new connections while blocked', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('busy-route.js'), { instances: 2, flags: ['--name', 'least', '--balance', 'least', '--watchdog', '30s'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  // Both workers have answered once (and sent a stats sample), so neither is new to the master.
  await waitFor(async () => new Set(await Promise.all(Array.from({ length: 6 }, () => pidFrom(cluster.port)))).size === 2, { what: 'both workers answering' });

  const blocked = await pidFrom(cluster.port, { path: '/spin' });
  const blockedAt = Date.now();
  const other = cluster.pids.find((pid) => pid !== blocked)!;
  // Its watchdog thread reports the stall once the loop has been silent 100 ms (slack for a
  // loaded machine, where that thread may wait for a core).
  await waitFor(() => Date.now() - blockedAt >= 1000, { what: 'the stall to be reported' });

  const answeredBy: number[] = [];
  for (let i = 0; i < 12; i++) answeredBy.push(await pidFrom(cluster.port, { timeoutMs: 4000 }));
  t.true(Date.now() - blockedAt < 10_000, 'all answered while the worker was still blocked');
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
});
