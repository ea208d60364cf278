// ExclusiveListens: what the master keeps of the addresses workers bind by themselves (exclusive: true).
// One worker listening in a loop, or lying, must not leave another's real addresses unlisted and unnamed.
import test from 'ava';
import { ExclusiveListens, MAX_EXCLUSIVE_PER_WORKER } from '../../src/master/exclusive-listens.js';
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
