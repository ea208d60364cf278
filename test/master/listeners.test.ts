// The master's table of listening addresses (src/master/listeners.ts), with stand-in workers.
import test from 'ava';
import { constants as osConstants } from 'node:os';
import { Listeners } from '../../src/master/listeners.js';
import type { BalancedWorker } from '../../src/master/balancers/types.js';
import type { ListenReply, ListenQuery, MasterMessage } from '../../src/protocol.js';
import { waitFor } from '../helpers/cluster.js';

/** A worker that keeps the replies it is sent. */
function standIn(id: number): BalancedWorker & { replies: ListenReply[] } {
  const replies: ListenReply[] = [];
  return {
    id,
    accepting: true,
    exited: false,
    replies,
    send(message: MasterMessage, handle?: { close(): void }) {
      if (message.cmd === 'NODE_clusterd:listen-reply') replies.push(message);
      handle?.close();
      return true;
    },
    load: () => ({ connections: 0, lagP99: 0, elu: 0, stalled: false }),
  };
}

const query = (index: number): ListenQuery => ({ key: `127.0.0.1:0:4::${index}`, address: '127.0.0.1', port: 0, addressType: 4, flags: 0 });

test('past the most addresses a cluster holds, a listen fails with EMFILE and the log says why once (it said nothing)', async (t) => {
  const warnings: string[] = [];
  const listeners = new Listeners({ mode: 'shared', onFailure: () => {}, warn: (event) => warnings.push(event), maxAddresses: 2 });
  t.teardown(() => listeners.closeAll());
  const worker = standIn(1);
  for (let index = 0; index < 4; index++) listeners.listen(worker, index + 1, query(index));
  await waitFor(() => worker.replies.length === 4, { what: 'four replies' });
  t.deepEqual(worker.replies.map((reply) => reply.errno).sort(), [-osConstants.errno.EMFILE, -osConstants.errno.EMFILE, 0, 0].sort());
  t.deepEqual(warnings, ['listen-cap']);
});

test("an address a worker's replacement is ready without is released, once it has been ready a while; one it listens on again stays", async (t) => {
  // Forged listens held 1,023 ports for good after the worker that asked was gone (the cap full, a
  // later real listen refused with EMFILE).
  const warnings: { event: string; data: Record<string, unknown> }[] = [];
  const listeners = new Listeners({ mode: 'rr', onFailure: () => {}, warn: (event, _message, data) => warnings.push({ event, data }), releaseAfterMs: 50 });
  t.teardown(() => listeners.closeAll());
  const first = standIn(1) as BalancedWorker & { replies: ListenReply[]; exited: boolean };
  const other = standIn(2);
  listeners.listen(first, 1, query(0));
  listeners.listen(first, 2, query(1));
  listeners.listen(other, 1, query(0));
  await waitFor(() => first.replies.length === 2 && other.replies.length === 1, { what: 'the listens answered' });
  const [main, extra] = [0, 1].map((index) => first.replies.find((reply) => reply.seq === index + 1)!.sockname!.port);
  listeners.ready(first);
  listeners.ready(other);

  // Worker 1 dies: its addresses stay bound while its replacement starts...
  first.exited = true;
  listeners.remove(first);
  t.is(listeners.addresses().length, 2);
  const second = standIn(1);
  listeners.listen(second, 1, query(0));
  await waitFor(() => second.replies.length === 1, { what: 'the replacement listening' });
  t.is(listeners.addresses().length, 2, 'kept until the replacement is ready');
  // ...and the one its replacement does not listen on goes once that has been ready for a while.
  listeners.ready(second);
  await waitFor(() => listeners.addresses().length === 1, { what: 'the extra address released' });
  t.deepEqual(listeners.addresses().map((address) => address.port), [main]);
  t.not(main, extra);
  t.deepEqual(warnings.map((warning) => warning.event), ['listen-released']);
  t.like(warnings[0]!.data, { count: 1, addresses: [`127.0.0.1:${extra}`] });
});

test('a draining worker still holds the port it bound itself (exclusive: true): listed, and named when another worker cannot bind it, until it exits', (t) => {
  const failures: Array<{ holder: number | null | undefined }> = [];
  const listeners = new Listeners({ mode: 'rr', onFailure: (failure) => failures.push({ holder: failure.exclusive?.holder }) });
  t.teardown(() => listeners.closeAll());
  const old = standIn(1) as BalancedWorker & { replies: ListenReply[]; exited: boolean };
  const own = { cmd: 'NODE_clusterd:own-listen', id: 1, address: '127.0.0.1', port: 3000 } as const;
  listeners.ownListen(old, { ...own, sockname: { address: '127.0.0.1', family: 'IPv4', port: 3000 }, error: null });
  // Stopped (a reload's old worker, a scale down): out of balancing, draining, its socket still open.
  listeners.remove(old);
  t.deepEqual(listeners.addresses(), [{ address: '127.0.0.1', family: 'IPv4', port: 3000, worker: 1 }]);
  listeners.ownListen(standIn(2), { ...own, sockname: null, error: { code: 'EADDRINUSE', errno: -98 } });
  t.deepEqual(failures, [{ holder: 1 }]);
  old.exited = true;
  listeners.remove(old);
  t.deepEqual(listeners.addresses(), []);
});
