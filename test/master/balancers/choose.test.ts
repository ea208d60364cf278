// Issue 5: each balancer's choice logic, as tables of worker states -> chosen worker.
import test from 'ava';
import { UNHEALTHY_LAG_MS, leastBusy, rendezvous, type WorkerLoad } from '../../../src/master/balancers/choose.js';
import { reusePortSupport } from '../../../src/master/balancers/shared.js';
import { HOLD_MS, MAX_HOLD_MS, fairHold, holdFor, leastConnections, leastStrategy } from '../../../src/master/balancers/least.js';
import type { BalancedWorker } from '../../../src/master/balancers/types.js';

const load = (connections: number, lagP99 = 1, elu = 0.1, stalled = false): WorkerLoad => ({ connections, lagP99, elu, stalled });

const least = test.macro({
  exec(t, loads: WorkerLoad[], expected: number) {
    t.is(leastBusy(loads), expected);
  },
  title: (title = '') => `least: ${title}`,
});

test('fewest connections wins', least, [load(5), load(2), load(9)], 1);
test('near-tie (within one connection) goes to the lower lag', least, [load(3, 20), load(4, 2)], 1);
test('near-tie with equal lag goes to the lower utilisation', least, [load(3, 2, 0.6), load(3, 2, 0.2)], 1);
test('a full tie goes to the earlier (longest idle) worker', least, [load(3), load(3), load(3)], 0);
test('two connections apart is no tie: lag does not matter', least, [load(1, 60), load(3, 1)], 0);
test('a lagging worker is skipped while a healthy one exists', least, [load(0, UNHEALTHY_LAG_MS + 50), load(7, 5)], 1);
test('a stalled worker is skipped while a healthy one exists', least, [load(0, 1, 0.1, true), load(4)], 1);
test('when every worker lags, fewest connections still wins', least, [load(4, 300), load(1, 250)], 1);
test('a stalled worker ranks below a lagging one', least, [load(0, 1, 0.1, true), load(6, 400)], 1);
test('when every worker is stalled, fewest connections wins', least, [load(4, 1, 0.1, true), load(1, 1, 0.1, true)], 1);
test('no candidates: -1', least, [], -1);

test('sticky: one address always maps to the same id', (t) => {
  const ids = [1, 2, 3, 4];
  for (let i = 0; i < 50; i++) {
    const address = `10.0.${i}.7`;
    t.is(rendezvous(address, ids), rendezvous(address, [...ids].reverse()));
  }
});

test('sticky: addresses spread over every worker', (t) => {
  const counts = new Map<number, number>();
  for (let i = 0; i < 4000; i++) {
    const id = rendezvous(`192.168.${i >> 8}.${i & 255}`, [1, 2, 3, 4]);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  t.is(counts.size, 4);
  for (const count of counts.values()) t.true(count > 800 && count < 1200, `${[...counts]}`);
});

test('sticky: when a worker leaves, only its addresses move', (t) => {
  const before = [1, 2, 3, 4];
  const after = [1, 2, 4];
  let moved = 0;
  for (let i = 0; i < 2000; i++) {
    const address = `172.16.${i >> 8}.${i & 255}`;
    const was = rendezvous(address, before);
    const now = rendezvous(address, after);
    if (was !== 3) t.is(now, was, address);
    else moved++;
  }
  t.true(moved > 0);
});

test('sticky: no worker, no choice', (t) => {
  t.is(rendezvous('127.0.0.1', []), -1);
});

const reuseport = test.macro({
  exec(t, version: string, platform: NodeJS.Platform, supported: boolean) {
    const why = reusePortSupport(version, platform);
    if (supported) t.is(why, null);
    else t.regex(why ?? '', /needs (Node\.js >= 22\.12|Linux)/);
  },
  title: (_title, version: string, platform: string, supported: boolean) => `reuseport on Node ${version} (${platform}): ${supported ? 'supported' : 'refused'}`,
});
for (const [version, platform, supported] of [
  ['20.19.0', 'linux', false],
  ['22.11.0', 'linux', false],
  ['22.12.0', 'linux', true],
  ['23.0.0', 'linux', false],
  ['23.1.0', 'linux', true],
  ['24.9.0', 'linux', true],
  ['24.9.0', 'darwin', false],
] as const) {
  test(reuseport, version, platform, supported);
}

test('least waits rather than hand a connection to a stalled loop, or to a worse-ranked one while a better one is busy', (t) => {
  const worker = (id: number, state: WorkerLoad) => ({ id, accepting: true, exited: false, send: () => true, load: () => state }) as unknown as BalancedWorker;
  const stalled = worker(1, load(0, 1, 0.1, true));
  const lagging = worker(2, load(0, 300));
  const healthy = worker(3, load(5));
  t.is(leastConnections.pick([stalled], new Set([stalled])), -1);
  t.is(leastConnections.pick([lagging], new Set([lagging, healthy])), -1);
  t.is(leastConnections.pick([lagging], new Set([lagging])), 0);
  t.is(leastConnections.pick([stalled, healthy], new Set([stalled, healthy])), 1);
});

const hold = test.macro({
  exec(t, chosen: WorkerLoad, busy: Array<{ load: WorkerLoad; ageMs: number }>, expected: number) {
    t.is(fairHold(chosen, busy), expected);
  },
  title: (title = '') => `least holds a connection for a busy worker: ${title}`,
});

test('one with clearly fewer connections, sent its last one just now', hold, load(40), [{ load: load(30), ageMs: 0 }], HOLD_MS);
test('the wait counts from when its connection was sent', hold, load(40), [{ load: load(30), ageMs: 1 }], HOLD_MS - 1);
test('not once it has kept its connection for the whole hold', hold, load(40), [{ load: load(30), ageMs: HOLD_MS }], 0);
test('not for a near-tie once its connection in flight counts', hold, load(33), [{ load: load(31), ageMs: 0 }], 0);
test('from three apart on', hold, load(34), [{ load: load(31), ageMs: 0 }], HOLD_MS);
test('not for one in worse health', hold, load(40), [{ load: load(30, UNHEALTHY_LAG_MS), ageMs: 0 }], 0);
test('not for a stalled one', hold, load(40), [{ load: load(30, 1, 0.1, true), ageMs: 0 }], 0);
test('the longest wait any busy worker asks for', hold, load(40), [{ load: load(39), ageMs: 0 }, { load: load(10), ageMs: 0.5 }], HOLD_MS - 0.5);
test('no busy workers', hold, load(40), [], 0);

test('least hold() passes over busy workers that no longer accept', (t) => {
  const worker = (state: WorkerLoad, accepting: boolean) => ({ id: 1, accepting, exited: false, send: () => true, load: () => state }) as unknown as BalancedWorker;
  const chosen = worker(load(40), true);
  t.is(leastConnections.hold!(chosen, [{ worker: worker(load(0), false), sentAt: 100 }], 100), 0);
  t.is(leastConnections.hold!(chosen, [{ worker: worker(load(0), true), sentAt: 100 }], 101), HOLD_MS - 1);
});

test('least holds as long as the busy worker\'s round trips take (an overloaded machine), within MAX_HOLD_MS (a fixed 3 ms hold gave up on slow acknowledgements, and a burst went unevenly)', (t) => {
  const worker = (state: WorkerLoad) => ({ id: 1, accepting: true, exited: false, send: () => true, load: () => state }) as unknown as BalancedWorker;
  const strategy = leastStrategy();
  const chosen = worker(load(40));
  const busy = worker(load(10));
  // Its connection was sent at 100 ms; the clock reads 105 ms: past the base hold.
  const holdAt105 = (): number => strategy.hold!(chosen, [{ worker: busy, sentAt: 100 }], 105);
  t.is(holdAt105(), 0, 'no round trip seen yet: the base hold, over');
  strategy.acked!(busy, 8);
  t.is(holdAt105(), 2 * 8 - 5, 'twice its round trip');
  strategy.acked!(busy, 500);
  t.is(holdAt105(), MAX_HOLD_MS - 5, 'a long block counts as MAX_HOLD_MS at most, and the hold stays within it');
  for (let i = 0; i < 40; i++) strategy.acked!(busy, 0.5);
  t.is(strategy.hold!(chosen, [{ worker: busy, sentAt: 100 }], 101), HOLD_MS - 1, 'quick round trips again: back to the base hold');
  t.is(holdAt105(), 0);
});

test('holdFor: twice the round trip, between the base hold and the bound', (t) => {
  t.is(holdFor(undefined, HOLD_MS, MAX_HOLD_MS), HOLD_MS);
  t.is(holdFor(0.4, HOLD_MS, MAX_HOLD_MS), HOLD_MS);
  t.is(holdFor(4, HOLD_MS, MAX_HOLD_MS), 8);
  t.is(holdFor(30, HOLD_MS, MAX_HOLD_MS), MAX_HOLD_MS);
});
