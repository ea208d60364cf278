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
