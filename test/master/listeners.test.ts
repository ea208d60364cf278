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
