// Issue 11: the TCP control listener's admission of connections (src/control/guard.ts), with
// stand-in sockets: who is evicted, when, and who is never.
import test from 'ava';
import { EventEmitter } from 'node:events';
import { ConnectionGuard, sourceOf, type GuardedSocket } from '../../src/control/guard.js';
import { waitFor } from '../helpers/cluster.js';

interface StandIn extends GuardedSocket {
  destroyed: boolean;
  name: string;
}

let nextPort = 40_000;
function socket(address: string, name = `${address}#${nextPort}`): StandIn {
  const emitter = new EventEmitter();
  const stand = {
    remoteAddress: address,
    remotePort: nextPort++,
    name,
    destroyed: false,
    once: emitter.once.bind(emitter),
    destroy() {
      if (!stand.destroyed) {
        stand.destroyed = true;
        setImmediate(() => emitter.emit('close'));
      }
      return stand;
    },
  };
  return stand as unknown as StandIn;
}

/** A guard with a long deadline, so only the limits close anything, and no time to settle (see below); cleaned up with the test. */
function guard(t: { teardown(fn: () => void): void }, limits: ConstructorParameters<typeof ConnectionGuard>[0] = {}): { guard: ConnectionGuard; sockets: StandIn[]; admit(address: string): StandIn } {
  const g = new ConnectionGuard({ authDeadlineMs: 60_000, settleMs: 0, ...limits });
  const sockets: StandIn[] = [];
  t.teardown(() => {
    for (const s of sockets) s.destroy();
  });
  return {
    guard: g,
    sockets,
    admit(address) {
      const s = socket(address);
      sockets.push(s);
      g.admit(s);
      return s;
    },
  };
}

test('past the per-source limit, the oldest pending connection of that source is closed, not the newcomer', (t) => {
  const { guard: g, sockets, admit } = guard(t, { pendingPerSource: 3 });
  for (let i = 0; i < 5; i++) admit('10.0.0.1');
  const other = admit('10.0.0.2');
  t.deepEqual(sockets.map((s) => s.destroyed), [true, true, false, false, false, false]);
  t.false(other.destroyed);
  t.is(g.pending, 4);
});

test('a burst past the per-source limit is kept while young: only connections pending past the settle time are trimmed, oldest first', async (t) => {
  const { guard: g, sockets, admit } = guard(t, { pendingPerSource: 3, settleMs: 100 });
  // A client with the token opening 6 channels at once: its calls are on the wire.
  for (let i = 0; i < 6; i++) admit('10.0.0.1');
  t.deepEqual(sockets.map((s) => s.destroyed), [false, false, false, false, false, false]);
  // Two of them present the token in time; the other four stay silent, as a stranger's would.
  g.authenticated(sockets[1]!);
  g.authenticated(sockets[4]!);
  await waitFor(() => g.pending === 3, { what: 'the silent ones trimmed to the limit once settled' });
  t.deepEqual(sockets.map((s) => s.destroyed), [true, false, false, false, false, false]);
  // A settled source past its limit: a newcomer is kept (young), the oldest settled one goes.
  const late = admit('10.0.0.1');
  t.deepEqual(sockets.map((s) => s.destroyed), [true, false, true, false, false, false, false]);
  t.false(late.destroyed);
});

test('past the total, the oldest pending connection of the busiest source is closed', (t) => {
  const { guard: g, sockets, admit } = guard(t, { pendingPerSource: 10, pending: 5 });
  admit('10.0.0.1');
  admit('10.0.0.2');
  admit('10.0.0.2');
  admit('10.0.0.2');
  admit('10.0.0.1');
  // Sixth: 10.0.0.2 holds the most, its oldest goes.
  admit('10.0.0.3');
  t.deepEqual(sockets.map((s) => s.destroyed), [false, true, false, false, false, false]);
  t.is(g.pending, 5);
});

test('an authenticated connection is never evicted, and does not count as pending', (t) => {
  const { guard: g, sockets, admit } = guard(t, { pendingPerSource: 2 });
  const trusted = admit('10.0.0.1');
  g.authenticated(trusted);
  for (let i = 0; i < 4; i++) admit('10.0.0.1');
  t.false(trusted.destroyed);
  t.deepEqual(sockets.map((s) => s.destroyed), [false, true, true, false, false]);
  t.is(g.pending, 2);
});

test('a pending connection is closed at the deadline; an authenticated one is not', async (t) => {
  const { guard: g, admit } = guard(t, { authDeadlineMs: 50 });
  const idle = admit('10.0.0.1');
  const trusted = admit('10.0.0.1');
  g.authenticated({ remoteAddress: trusted.remoteAddress, remotePort: trusted.remotePort });
  await waitFor(() => idle.destroyed, { what: 'the idle connection closed at the deadline' });
  t.false(trusted.destroyed);
  t.is(g.pending, 0);
  await waitFor(() => g.connections === 1, { what: 'the closed connection uncounted' });
});

test('at the connection cap a newcomer evicts a pending connection, and is refused only when all are authenticated', async (t) => {
  const { guard: g, admit } = guard(t, { connections: 2 });
  const first = admit('10.0.0.1');
  const second = admit('10.0.0.2');
  g.authenticated(first);
  const third = admit('10.0.0.3');
  t.true(second.destroyed);
  t.false(third.destroyed);
  await waitFor(() => g.connections === 2, { what: 'the evicted connection uncounted' });
  g.authenticated(third);
  const fourth = admit('10.0.0.4');
  t.true(fourth.destroyed);
  t.false(first.destroyed || third.destroyed);
});

const source = test.macro({
  exec(t, address: string, expected: string) {
    t.is(sourceOf(address), expected);
  },
  title: (_title, address: string, expected: string) => `source of ${address || '(none)'} is ${expected || '(none)'}`,
});
test(source, '192.0.2.7', '192.0.2.7');
test(source, '::ffff:192.0.2.7', '192.0.2.7');
test(source, '2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64');
test(source, '2001:db8:1:2::9', '2001:db8:1:2::/64');
test(source, '2001:db8::1', '2001:db8:0:0::/64');
test(source, '2001:DB8:0001::1', '2001:db8:1:0::/64');
test(source, '::1', '0:0:0:0::/64');
test(source, 'fe80::1%eth0', 'fe80:0:0:0::/64');
test(source, '64:ff9b::192.0.2.7', '64:ff9b:0:0::/64');
test(source, '', '');

test('a connection reset before it was accepted (no remote address) is closed at once and counts for nothing; the limits still evict', async (t) => {
  const { guard: g, admit } = guard(t, { pendingPerSource: 2 });
  const gone = (): StandIn => {
    const s = socket('10.0.0.9');
    (s as { remoteAddress?: string }).remoteAddress = undefined;
    (s as { remotePort?: number }).remotePort = undefined;
    return s;
  };
  const [first, second] = [gone(), gone()];
  t.false(g.admit(first));
  t.false(g.admit(second));
  t.true(first.destroyed && second.destroyed);
  t.is(g.pending, 0);
  await waitFor(() => g.connections === 0, { what: 'nothing counted' });
  // The per-source limit still closes the oldest of a source.
  const [a, b, c] = [admit('10.0.0.1'), admit('10.0.0.1'), admit('10.0.0.1')];
  t.deepEqual([a.destroyed, b.destroyed, c.destroyed], [true, false, false]);
});
