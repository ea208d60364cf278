// Issue 5: the dispatcher `least` runs on, with a real listening socket and real connections but
// stand-in workers, so a test decides when each one acknowledges. Its hold: a connection waits a
// few ms for a busy worker with clearly fewer connections rather than go to the free one.
import test from 'ava';
import net from 'node:net';
import { DispatchBalancer } from '../../../src/master/balancers/dispatch.js';
import { HOLD_MS, leastConnections, leastStrategy } from '../../../src/master/balancers/least.js';
import type { DispatchStrategy } from '../../../src/master/balancers/dispatch.js';
import type { WorkerLoad } from '../../../src/master/balancers/choose.js';
import type { BalancedWorker, RawHandle } from '../../../src/master/balancers/types.js';
import type { MasterMessage } from '../../../src/protocol.js';
import { waitFor } from '../../helpers/cluster.js';

interface StandIn extends BalancedWorker {
  /** Ids of the connections it was sent, in order, and when (performance.now()). */
  received: number[];
  receivedAt: number[];
  connections: number;
}

function standIn(id: number, connections: number): StandIn {
  const worker: StandIn = {
    id,
    accepting: true,
    exited: false,
    received: [],
    receivedAt: [],
    connections,
    send(message: MasterMessage, handle?: RawHandle) {
      if (message.cmd === 'NODE_clusterd:conn') {
        worker.received.push(message.id);
        worker.receivedAt.push(performance.now());
        // The test plays the worker: it keeps the connection (the socket closes with the test).
        void handle;
      }
      return true;
    },
    load: (): WorkerLoad => ({ connections: worker.connections, lagP99: 1, elu: 0.1, stalled: false }),
  };
  return worker;
}

/**
 * A dispatcher on a real listening socket with two stand-in workers of `loads` open connections,
 * and the first connection already handed to the second (the lighter) worker, unacknowledged.
 */
async function setUp(t: { teardown(fn: () => void): void }, loads: [number, number], strategy: DispatchStrategy = leastConnections) {
  const balancer = await DispatchBalancer.open(
    { key: '127.0.0.1:0:4::0', address: '127.0.0.1', port: 0, addressType: 4, fd: undefined, flags: 0, backlog: undefined },
    strategy,
  );
  const sockets: net.Socket[] = [];
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    balancer.close();
  });
  const connect = () => {
    const socket = net.connect(balancer.sockname.port, '127.0.0.1');
    socket.on('error', () => {});
    sockets.push(socket);
  };
  const workers = [standIn(1, loads[0]), standIn(2, loads[1])] as const;
  balancer.add(workers[0], 1);
  balancer.add(workers[1], 2);
  connect();
  await waitFor(() => workers[1].received.length === 1, { what: 'the first connection at the lighter worker' });
  return { balancer, connect, workers };
}

test('a connection waits for the busy worker with fewer connections, and goes to it on its ack', async (t) => {
  // A hold long enough that only the ack can end it.
  const { balancer, connect, workers } = await setUp(t, [10, 0], leastStrategy(60_000));
  const [loaded, light] = workers;
  // The light worker has not acknowledged: the second connection waits for it instead of going
  // to the free worker with 10 connections...
  connect();
  await waitFor(() => balancer.queued === 1, { what: 'the second connection queued' });
  t.deepEqual(loaded.received, []);
  // ...and goes to it as soon as it acknowledges.
  light.connections = 1;
  balancer.ack(light, light.received[0]!, true);
  t.is(light.received.length, 2);
  t.deepEqual(loaded.received, []);
  t.is(balancer.queued, 0);
});

test('a busy worker that does not acknowledge within the hold is passed over', async (t) => {
  const { balancer, connect, workers } = await setUp(t, [10, 0]);
  const [loaded, light] = workers;
  connect();
  await waitFor(() => loaded.received.length === 1, { what: 'the second connection at the free worker after the hold' });
  // Not before the hold ran out, counted from when the light worker was sent its connection
  // (less 1 ms: libuv's timer clock counts whole milliseconds).
  t.true(loaded.receivedAt[0]! - light.receivedAt[0]! >= HOLD_MS - 1);
  t.is(light.received.length, 1);
  t.is(balancer.queued, 0);
});

test('no hold between near-equal workers', async (t) => {
  // The busy worker would still have one connection fewer than the free one once it takes its
  // connection in flight (4 + 1 against 5): a near-tie, no reason to wait. With a hold of a
  // minute, a wrong hold would keep the connection queued instead of merely delaying it by
  // HOLD_MS, which a wait for its arrival cannot tell from none.
  const { balancer, connect, workers } = await setUp(t, [5, 4], leastStrategy(60_000));
  connect();
  await waitFor(() => workers[0].received.length === 1 || balancer.queued === 1, { what: 'the second connection sent or queued' });
  t.is(balancer.queued, 0, 'held for the busy worker');
  t.is(workers[0].received.length, 1);
  t.is(workers[1].received.length, 1);
});
