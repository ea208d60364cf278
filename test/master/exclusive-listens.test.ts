// ExclusiveListens: what the master keeps of the addresses workers bind by themselves (exclusive: true).
// One worker listening in a loop, or lying, must not leave another's real addresses unlisted and unnamed.
import test from 'ava';
import { ExclusiveListens, heldByMaster, MAX_EXCLUSIVE_PER_WORKER } from '../../src/master/exclusive-listens.js';
import type { BalancedWorker } from '../../src/master/balancers/index.js';
import type { OwnListen } from '../../src/protocol.js';

function worker(id: number): BalancedWorker {
  return { id, exited: false } as unknown as BalancedWorker;
}

function listen(id: number, port: number): OwnListen {
  return { cmd: 'NODE_clusterd:own-listen', id, address: '127.0.0.1', port, sockname: { address: '127.0.0.1', family: 'IPv4', port }, error: null };
}

test('a worker lists at most MAX_EXCLUSIVE_PER_WORKER addresses, said once past it; another worker\'s are listed and named as holding theirs', (t) => {
  const said: string[] = [];
  const exclusive = new ExclusiveListens({ warn: (event) => said.push(event), max: 1024 });
  const flooding = worker(1);
  const honest = worker(2);
  for (let i = 0; i < 500; i++) exclusive.listened(flooding, listen(i + 1, 10_000 + i));
  t.is(exclusive.addresses().length, MAX_EXCLUSIVE_PER_WORKER);
  t.is(said.filter((event) => event === 'listen-exclusive-unlisted').length, 1);
  exclusive.listened(honest, listen(1, 3000));
  t.true(exclusive.addresses().some((address) => address.port === 3000 && address.worker === 2));
  // A third worker's bind of the honest one's port names it.
  const failed = exclusive.listened(worker(3), { ...listen(1, 3000), sockname: null, error: { code: 'EADDRINUSE', errno: -98 } });
  t.is(failed?.exclusive?.holder, 2);
});

test('a failed bind names the worker holding an overlapping address: the same host, or a wildcard on either side; another host or port, none', (t) => {
  const exclusive = new ExclusiveListens({ warn: () => {}, max: 1024 });
  const held = (id: number, address: string | null, port: number): OwnListen => ({ ...listen(id, port), address });
  exclusive.listened(worker(1), held(1, '127.0.0.1', 3000));
  exclusive.listened(worker(2), held(1, null, 3001));
  exclusive.listened(worker(3), held(1, '::', 3002));
  const holder = (address: string | null, port: number): number | null | undefined =>
    exclusive.listened(worker(9), { ...held(1, address, port), sockname: null, error: { code: 'EADDRINUSE', errno: -98 } })?.exclusive?.holder;
  t.is(holder('127.0.0.1', 3000), 1);
  t.is(holder('0.0.0.0', 3000), 1);
  t.is(holder(null, 3000), 1);
  t.is(holder('10.0.0.5', 3000), null);
  t.is(holder('10.0.0.5', 3001), 2);
  t.is(holder('::1', 3002), 3);
  t.is(holder('127.0.0.1', 3003), null);
});

test('a claim of an address the master holds is recognised as a bind would refuse it, and only then', (t) => {
  const held = (address: string, port = 9100) => [{ what: 'it', address, port }];
  const claim = (address: string, port = 9100) => ({ address, family: address.includes(':') ? 'IPv6' : 'IPv4', port });
  const taken = (master: string, claimed: string, port?: number): boolean => heldByMaster(claim(claimed, port), held(master)) !== undefined;
  t.true(taken('127.0.0.1', '127.0.0.1'));
  t.false(taken('127.0.0.1', '127.0.0.1', 9101), 'another port');
  t.false(taken('127.0.0.1', '127.0.0.2'), 'another address of the family');
  t.true(taken('0.0.0.0', '127.0.0.2'), "under the master's IPv4 wildcard");
  t.false(taken('0.0.0.0', '::1'), "IPv6 is not under the master's IPv4 wildcard");
  t.true(taken('::', '127.0.0.1'), "under the master's dual-stack wildcard");
  t.true(taken('::', '::1'));
  t.true(taken('127.0.0.1', '0.0.0.0'), "the claim's IPv4 wildcard over the master's address");
  t.false(taken('127.0.0.1', '::'), 'a claimed :: may be v6-only');
  t.true(taken('::1', '::'));
  t.true(taken('localhost', '127.0.0.1'));
  t.true(taken('localhost', '::1'));
  // A v6-only `::` (the app's listen asked for ipv6Only) takes no IPv4: Linux lets a worker bind it beside.
  const v6only = (claimed: string): boolean => heldByMaster(claim(claimed), [{ what: 'it', address: '::', port: 9100, ipv6Only: true }]) !== undefined;
  t.false(v6only('0.0.0.0'), "IPv4 is not under the master's v6-only wildcard");
  t.false(v6only('127.0.0.1'));
  t.false(v6only('::ffff:127.0.0.1'), 'a v4-mapped address binds in IPv4');
  t.true(v6only('::1'));
  t.true(v6only('::'));
  t.true(taken('::', '::ffff:127.0.0.1'), "a v4-mapped address under the master's dual-stack wildcard");
  t.true(taken('0.0.0.0', '::ffff:127.0.0.1'), "a v4-mapped address under the master's IPv4 wildcard");
  t.true(heldByMaster({ address: '/run/app.sock', family: 'unix', port: -1 }, [{ what: 'it', address: '/run/app.sock', port: -1 }]) !== undefined);
  t.is(heldByMaster({ address: '/run/other.sock', family: 'unix', port: -1 }, [{ what: 'it', address: '/run/app.sock', port: -1 }]), undefined);
});
