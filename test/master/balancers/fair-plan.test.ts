// Issue 10: `fair`'s decisions, as tables of worker states (planAcceptors, settledCap), and the
// master's half on a real socket with stand-in workers that report as a test tells them to.
import test, { type ExecutionContext } from 'ava';
import { FairBalancer } from '../../../src/master/balancers/fair.js';
import { churn, planAcceptors, resumeAt, settledCap, slack, keepLevels, catchUpLevel, HELD_TICKS, type AcceptorMode, type AcceptorView } from '../../../src/master/balancers/fair-plan.js';
import { STALLED, type WorkerLoad } from '../../../src/master/balancers/choose.js';
import type { BalancedWorker, Balancer, RawHandle } from '../../../src/master/balancers/types.js';
import type { MasterMessage } from '../../../src/protocol.js';

const view = (mode: AcceptorMode, connections: number, { eligible = true, rank = 0, lagging = false, ceiling = null as number | null } = {}): AcceptorView => ({
  mode,
  connections,
  eligible,
  rank,
  lagging,
  ceiling,
});

test('slack: 2 connections, or 1/16 of the share once that is larger', (t) => {
  t.deepEqual([0, 1, 32, 33, 64, 160].map(slack), [2, 2, 2, 3, 4, 10]);
  t.is(resumeAt(2), 0);
  t.is(resumeAt(34), 31);
});

const plan = test.macro({
  exec(t, views: AcceptorView[], cap: number, expected: { modes: AcceptorMode[]; limit: number | null }) {
    const result = planAcceptors(views, cap);
    t.deepEqual({ modes: result.modes, limit: result.limit }, expected);
  },
  title: (title = '') => `planAcceptors: ${title}`,
});

test('one worker alone accepts without a limit', plan, [view('idle', 50)], 2, { modes: ['accepting'], limit: null });
test('a fresh pair both accept within the smallest limit', plan, [view('idle', 0), view('idle', 0)], 2, { modes: ['accepting', 'accepting'], limit: 2 });
test('a worker not ready (or draining) never accepts', plan, [view('accepting', 0, { eligible: false }), view('idle', 0)], 2, { modes: ['idle', 'accepting'], limit: null });
test('a worker joining brings the limit down to an even share', plan, [view('accepting', 32), view('idle', 0)], 34, { modes: ['full', 'accepting'], limit: 18 });
test('a full worker waits while another accepts', plan, [view('full', 2), view('accepting', 1)], 2, { modes: ['full', 'accepting'], limit: 2 });
test('every preferred worker full: the limit rises a step and all accept', plan, [view('full', 2), view('full', 2)], 2, { modes: ['accepting', 'accepting'], limit: 4 });
test('the step reaches an even share plus slack at once', plan, [view('full', 40), view('full', 4)], 2, { modes: ['full', 'accepting'], limit: 24 });
test('a full worker back at its resume point accepts again', plan, [view('full', 31), view('accepting', 30)], 34, { modes: ['accepting', 'accepting'], limit: 34 });
test('a full worker above its resume point does not', plan, [view('full', 32), view('accepting', 30)], 34, { modes: ['full', 'accepting'], limit: 34 });
test('planAcceptors: workers all full at any limit always leave one accepting once it is raised (at 32 each on 2 workers, none did: a pool past 64 waited for good)', (t) => {
  for (const workers of [2, 3, 16]) {
    for (let held = 1; held <= 2000; held++) {
      const result = planAcceptors(Array.from({ length: workers }, () => view('full', held)), held);
      if (!result.modes.includes('accepting')) return t.fail(`${workers} workers full at ${held}: none accepts (limit ${result.limit})`);
      t.true(result.limit! > held);
    }
  }
  // Uneven: the one below the raised limit takes it, the one above does not.
  t.deepEqual(planAcceptors([view('full', 40), view('full', 33)], 32).modes, ['full', 'accepting']);
});
test('a worker stopped by its own maxConnections waits while another accepts', plan, [view('full', 3, { ceiling: 3 }), view('accepting', 5)], 8, { modes: ['full', 'accepting'], limit: 8 });
test('a worker at its own maxConnections is no reason to keep the limit: it rises for the others', plan, [view('full', 3, { ceiling: 3 }), view('full', 8)], 8, {
  modes: ['full', 'accepting'],
  limit: 10,
});
test('a worker back at the resume point of its own maxConnections accepts again', plan, [view('full', 1, { ceiling: 3 }), view('accepting', 5)], 8, { modes: ['accepting', 'accepting'], limit: 8 });
test('a worker whose own maxConnections is 0 never accepts (a copy sent was closed at once, over and over); the limit rises for the other', plan, [view('full', 0, { ceiling: 0 }), view('full', 2)], 2, {
  modes: ['full', 'accepting'],
  limit: 4,
});
test('a worker at its own maxConnections accepts again as soon as it has room: no slack below it', plan, [view('full', 9, { ceiling: 10 }), view('full', 12)], 12, { modes: ['accepting', 'full'], limit: 12 });
test('planAcceptors: once every preferred worker is at its own maxConnections, all accept past it (overflow: Node refuses), and the limit stays', (t) => {
  const result = planAcceptors([view('full', 3, { ceiling: 3 }), view('full', 5, { ceiling: 5 }), view('accepting', 0, { eligible: false })], 8);
  t.deepEqual(result, { modes: ['accepting', 'accepting', 'idle'], limit: 8, cap: 8, overflow: true });
  // One with room again: the others stop at their own once more.
  t.like(planAcceptors([view('accepting', 3, { ceiling: 3 }), view('accepting', 4, { ceiling: 5 })], 8), { modes: ['full', 'accepting'], overflow: false });
  // A ceiling above the limit (the limit came down since) holds nobody back: the limit rises as ever.
  t.like(planAcceptors([view('full', 8, { ceiling: 20 }), view('full', 8)], 8), { modes: ['accepting', 'accepting'], limit: 10, overflow: false });
});
test('planAcceptors: a worker at its own maxConnections gives way to a stalled one with room, which takes the connections once it turns (it accepted them past its own, and Node reset 10 of 20)', (t) => {
  t.deepEqual(planAcceptors([view('full', 3, { ceiling: 3 }), view('paused', 7, { rank: STALLED })], 8), { modes: ['paused', 'accepting'], limit: null, cap: 8, overflow: false });
  // With room again, it is the one preferred.
  t.like(planAcceptors([view('full', 2, { ceiling: 3 }), view('accepting', 7, { rank: STALLED })], 8), { modes: ['accepting', 'paused'], limit: null, overflow: false });
  // The one worker there is, at its own: it accepts past it, and Node refuses, as one process does.
  t.like(planAcceptors([view('full', 3, { ceiling: 3 })], 8), { modes: ['accepting'], limit: null, overflow: true });
  // Every worker at its own, stalled or not: the best ranked overflow.
  t.like(planAcceptors([view('full', 3, { ceiling: 3 }), view('paused', 5, { rank: STALLED, ceiling: 5 })], 8), { modes: ['accepting', 'paused'], overflow: true });
});
test('a stalled worker is paused while one whose loop turns accepts, which then has no limit', plan, [view('accepting', 3, { rank: STALLED }), view('accepting', 3)], 8, {
  modes: ['paused', 'accepting'],
  limit: null,
});
test('a stalled worker is paused while the others share the limit', plan, [view('accepting', 3, { rank: STALLED }), view('paused', 3), view('full', 9)], 9, {
  modes: ['paused', 'accepting', 'full'],
  limit: 9,
});
test('when every worker is stalled, they share the limit as turning ones would', plan, [view('full', 8, { rank: STALLED }), view('accepting', 3, { rank: STALLED })], 8, {
  modes: ['full', 'accepting'],
  limit: 8,
});
test('a lagging worker waits while one that keeps time accepts, within the shared limit', plan, [view('accepting', 3, { lagging: true }), view('accepting', 3)], 8, {
  modes: ['paused', 'accepting'],
  limit: 8,
});
test('a lagging worker takes its turn once the others are full', plan, [view('paused', 3, { lagging: true }), view('full', 8)], 8, { modes: ['accepting', 'full'], limit: 8 });
test('with a lagging worker full too, the limit rises a step and it waits again', plan, [view('full', 8, { lagging: true }), view('full', 8)], 8, {
  modes: ['paused', 'accepting'],
  limit: 10,
});
test('when every preferred worker lags, they share the limit as the others would', plan, [view('accepting', 3, { lagging: true }), view('full', 8, { lagging: true })], 8, {
  modes: ['accepting', 'full'],
  limit: 8,
});
test('a lagging worker whose only peer is stalled accepts, without a limit', plan, [view('paused', 3, { lagging: true }), view('accepting', 3, { rank: STALLED })], 8, {
  modes: ['accepting', 'paused'],
  limit: null,
});
test('an accepting worker the master believes past a lowered limit keeps its copy (it stops itself)', plan, [view('accepting', 40), view('accepting', 10)], 27, {
  modes: ['full', 'accepting'],
  limit: 27,
});

test('planAcceptors: a burst fills two workers in even steps to 32 each', (t) => {
  let cap = slack(0);
  const connections = [0, 0];
  let modes: AcceptorMode[] = ['idle', 'idle'];
  // Each round, every accepting worker takes connections up to the limit (as fast as the kernel
  // hands them out), and the plan runs on its `full` reports, until 64 have arrived.
  for (let arrived = 0; arrived < 64; ) {
    const result = planAcceptors(connections.map((count, i) => view(modes[i]!, count)), cap);
    cap = result.cap;
    modes = result.modes;
    for (let i = 0; i < 2 && arrived < 64; i++) {
      while (modes[i] === 'accepting' && connections[i]! < result.limit! && arrived < 64) {
        connections[i]!++;
        arrived++;
      }
      if (connections[i]! >= result.limit!) modes[i] = 'full';
    }
  }
  t.deepEqual(connections, [32, 32]);
  t.true(cap <= 34, `cap ${cap}`);
});

const settle = test.macro({
  exec(t, peaks: number[], lows: number[], expected: number, { cap = 34, cycled = false, accepted = 10_000, closed = 10_000 } = {}) {
    t.is(settledCap(peaks.map((peak, i) => ({ peak, low: lows[i]!, churn: churn({ peak, low: lows[i]!, accepted, closed }), cycled })), cap), expected);
  },
  title: (title = '') => `settledCap: ${title}`,
});

test('steady keep-alive stays where the burst put it', settle, [32, 32], [32, 32], 34);
test('after every connection closed, back to the smallest limit', settle, [0, 0], [0, 0], 2);
test('a burst of keep-alive connections that stayed: no swing (planAcceptors lifts the limit to their share)', settle, [32, 32], [0, 0], 2, { closed: 0 });
test('a burst still arriving at the tick, after cycling at the limit: still no swing', settle, [20, 18], [0, 0], 2, { cap: 20, cycled: true, closed: 0 });
test('churn counts as far as connections closed', settle, [40, 40], [0, 0], 22, { closed: 10 });
test('connections that came long before and closed now are not churn', settle, [32, 32], [0, 0], 2, { accepted: 0, closed: 32 });
test('short-lived connections (a new one per request): above all workers\' swings together', settle, [60, 41], [0, 1], 103);
test('long-lived connections spread unevenly: an even share of them', settle, [51, 11], [50, 10], 34);
test('long-lived connections with churn on top: the share plus the swings', settle, [58, 20], [50, 10], 50);
test('short-lived connections that cycled at the limit: the swing of one that reached it counts twice', settle, [34, 30], [0, 1], 100, { cap: 34, cycled: true });
test('long-lived ones that cycled at the limit (reconnects): the swing counts once', settle, [34, 33], [28, 27], 42, { cap: 34, cycled: true });

interface StandIn extends BalancedWorker {
  sent: Array<{ message: MasterMessage; handle: boolean }>;
  loadState: WorkerLoad;
}

function standIn(id: number): StandIn {
  const worker: StandIn = {
    id,
    accepting: true,
    exited: false,
    sent: [],
    loadState: { connections: 0, lagP99: 1, elu: 0.1, stalled: false },
    send(message: MasterMessage, handle?: RawHandle) {
      worker.sent.push({ message, handle: handle !== undefined });
      return true;
    },
    load: () => worker.loadState,
  };
  return worker;
}

const lastOf = (worker: StandIn, cmd: MasterMessage['cmd']) => worker.sent.findLast(({ message }) => message.cmd === cmd);
/** The epoch of the last terms a worker was sent (a limit, else the copy it accepts from). */
const epochOf = (worker: StandIn) => ((lastOf(worker, 'NODE_clusterd:limit') ?? lastOf(worker, 'NODE_clusterd:accept'))!.message as { epoch: number }).epoch;

/** A worker's load report: its connections now, the most and fewest over the interval, and how many it accepted and closed in it. */
function load(balancer: FairBalancer, worker: StandIn, connections: number, peak: number, low: number, accepted = 0, closed = 0): void {
  balancer.report(worker, { cmd: 'NODE_clusterd:load', key: balancer.key, connections, peak, low, accepted, closed });
}

async function openBalancer(t: { teardown(fn: () => void): void }): Promise<FairBalancer> {
  const balancer = await FairBalancer.open({ key: '127.0.0.1:0:4::0', address: '127.0.0.1', port: 0, addressType: 4, fd: undefined, flags: 0, backlog: undefined });
  t.teardown(() => balancer.close());
  return balancer;
}

/** A balancer with two stand-in workers added, A then B. */
async function twoWorkers(t: { teardown(fn: () => void): void }): Promise<{ balancer: FairBalancer; a: StandIn; b: StandIn }> {
  const balancer = await openBalancer(t);
  const [a, b] = [standIn(1), standIn(2)];
  balancer.add(a, 1);
  balancer.add(b, 1);
  return { balancer, a, b };
}

test('FairBalancer: the listen reply and every accept carry the socket; full reports raise the limit together', async (t) => {
  const balancer = await openBalancer(t);
  const [a, b] = [standIn(1), standIn(2)];
  balancer.add(a, 1);
  t.like(a.sent[0], { message: { cmd: 'NODE_clusterd:listen-reply', mode: 'fair' }, handle: true });
  // Alone: accepts without a limit.
  t.like(lastOf(a, 'NODE_clusterd:accept'), { message: { limit: null }, handle: true });
  balancer.add(b, 1);
  t.like(lastOf(b, 'NODE_clusterd:accept'), { message: { limit: 2 }, handle: true });
  // A second worker brings the limit to A, which keeps its copy.
  t.like(lastOf(a, 'NODE_clusterd:limit'), { message: { limit: 2 } });
  const epoch = (worker: StandIn) => (lastOf(worker, 'NODE_clusterd:limit') ?? lastOf(worker, 'NODE_clusterd:accept'))!.message as { epoch: number };

  balancer.report(a, { cmd: 'NODE_clusterd:full', key: balancer.key, epoch: epoch(a).epoch, connections: 2, ceiling: null });
  t.is(a.sent.filter(({ message }) => message.cmd === 'NODE_clusterd:accept').length, 1, 'A waits while B accepts');
  balancer.report(b, { cmd: 'NODE_clusterd:full', key: balancer.key, epoch: epoch(b).epoch, connections: 2, ceiling: null });
  t.is(balancer.cap, 4);
  t.like(lastOf(a, 'NODE_clusterd:accept'), { message: { limit: 4, resumeAt: 2 }, handle: true });
  t.like(lastOf(b, 'NODE_clusterd:accept'), { message: { limit: 4, resumeAt: 2 }, handle: true });
});

test('FairBalancer: a stale full report does not stop a worker that was sent a newer copy', async (t) => {
  const { balancer, a, b } = await twoWorkers(t);
  const accepts = (worker: StandIn) => worker.sent.filter(({ message }) => message.cmd === 'NODE_clusterd:accept');
  const acceptEpoch = (accepts(a).at(-1)!.message as { epoch: number }).epoch;
  // A reports full for a copy older than the one it holds now (it has since dropped to one connection).
  balancer.report(a, { cmd: 'NODE_clusterd:full', key: balancer.key, epoch: acceptEpoch - 1, connections: 1, ceiling: null });
  balancer.report(b, { cmd: 'NODE_clusterd:full', key: balancer.key, epoch: (lastOf(b, 'NODE_clusterd:accept')!.message as { epoch: number }).epoch, connections: 2, ceiling: null });
  // Only B is full: no raise, and A is not sent another copy.
  t.is(balancer.cap, 2);
  t.is(accepts(a).length, 1);
});

test('FairBalancer: a full worker back at its resume point gets a copy', async (t) => {
  const { balancer, a } = await twoWorkers(t);
  balancer.report(a, { cmd: 'NODE_clusterd:full', key: balancer.key, epoch: epochOf(a), connections: 2, ceiling: null });
  const before = a.sent.length;
  // Its two connections came before this interval: no churn, the limit stays.
  balancer.report(a, { cmd: 'NODE_clusterd:under', key: balancer.key, epoch: epochOf(a), connections: 0, peak: 2, low: 0, accepted: 0, closed: 2 });
  t.is(balancer.cap, 2);
  t.like(a.sent.slice(before).find(({ message }) => message.cmd === 'NODE_clusterd:accept'), { message: { limit: 2 }, handle: true });
});

test('FairBalancer: a full worker whose connections came and went while it waited (churn) raises the limit at once, not at the next report', async (t) => {
  const { balancer, a, b } = await twoWorkers(t);
  // A new connection per request after an idle moment: the limit is at its smallest, and A reaches it.
  t.is(balancer.cap, 2);
  balancer.report(a, { cmd: 'NODE_clusterd:full', key: balancer.key, epoch: epochOf(a), connections: 2, ceiling: null });
  const before = a.sent.length;
  // Back down after 40 connections came and went: they were short-lived.
  balancer.report(a, { cmd: 'NODE_clusterd:under', key: balancer.key, epoch: epochOf(a), connections: 0, peak: 2, low: 0, accepted: 40, closed: 40 });
  // settledCap's swing of a worker that cycled at the limit: twice its 2, plus slack.
  t.is(balancer.cap, settledCap([{ peak: 2, low: 0, churn: 2, cycled: true }, { peak: 0, low: 0, churn: 0, cycled: false }], 2));
  t.true(balancer.cap > 2);
  t.like(a.sent.slice(before).find(({ message }) => message.cmd === 'NODE_clusterd:accept'), { message: { limit: balancer.cap }, handle: true });
  t.like(lastOf(b, 'NODE_clusterd:limit'), { message: { limit: balancer.cap } });
  // The same churn again raises nothing more; a wider one does.
  const cap = balancer.cap;
  balancer.report(a, { cmd: 'NODE_clusterd:full', key: balancer.key, epoch: epochOf(a), connections: cap, ceiling: null });
  balancer.report(a, { cmd: 'NODE_clusterd:under', key: balancer.key, epoch: epochOf(a), connections: 0, peak: 2, low: 0, accepted: 80, closed: 80 });
  t.is(balancer.cap, cap);
  balancer.report(a, { cmd: 'NODE_clusterd:full', key: balancer.key, epoch: epochOf(a), connections: cap, ceiling: null });
  balancer.report(a, { cmd: 'NODE_clusterd:under', key: balancer.key, epoch: epochOf(a), connections: 0, peak: cap, low: 0, accepted: 80, closed: 80 });
  t.true(balancer.cap > cap);
});

test('FairBalancer: the limit follows the last reports, however many ticks pass between them', async (t) => {
  const { balancer, a, b } = await twoWorkers(t);
  // A new connection per request: each worker swung between none and most of the 64.
  load(balancer, a, 3, 60, 0, 900, 897);
  load(balancer, b, 1, 41, 1, 800, 800);
  balancer.settle();
  const cap = settledCap([{ peak: 60, low: 0, churn: 60, cycled: false }, { peak: 41, low: 1, churn: 40, cycled: false }], 2);
  t.is(balancer.cap, cap);
  // The master's tick and the workers' reports run on clocks of their own: two ticks can fall
  // between two reports. The second must not read "no churn" and drop the limit to nothing.
  balancer.settle();
  balancer.settle();
  t.is(balancer.cap, cap);
  t.like(lastOf(a, 'NODE_clusterd:limit'), { message: { limit: cap } });
  // Once the load stops, the reports say so (once: a worker sends no report while nothing changes).
  load(balancer, a, 0, 3, 0, 0, 3);
  load(balancer, b, 0, 1, 0, 0, 1);
  balancer.settle();
  t.is(balancer.cap, slack(0));
});

test('FairBalancer: a worker whose loop only lags keeps accepting', async (t) => {
  const { balancer, a, b } = await twoWorkers(t);
  a.loadState = { ...a.loadState, lagP99: 250 };
  (balancer as Balancer).health!(a);
  t.falsy(lastOf(a, 'NODE_clusterd:pause'));
  t.like(lastOf(b, 'NODE_clusterd:accept'), { message: { limit: 2 } });
});

test('FairBalancer: a worker that says its loop lags gets no copy while the other accepts, gets one once the other is full, and accepts as before once it keeps time', async (t) => {
  const { balancer, a, b } = await twoWorkers(t);
  /** The epoch of the last message that carried one: what the worker would report with. */
  const epoch = (worker: StandIn) => (worker.sent.findLast(({ message }) => 'epoch' in message)!.message as { epoch: number }).epoch;
  const report = (worker: StandIn, cmd: 'NODE_clusterd:full' | 'NODE_clusterd:lagging', connections: number, lagging = true) =>
    balancer.report(worker, cmd === 'NODE_clusterd:full' ? { cmd, key: balancer.key, epoch: epoch(worker), connections, ceiling: null } : { cmd, key: balancer.key, epoch: epoch(worker), connections, lagging });
  // A fresh pair: both accept within the smallest limit (2). A lags: it closed its copy itself, and nothing is sent.
  const before = a.sent.length;
  report(a, 'NODE_clusterd:lagging', 0);
  t.is(a.sent.length, before);
  // B stops at the limit: nobody that keeps time can accept, so A does (a burst still splits evenly).
  report(b, 'NODE_clusterd:full', 2);
  t.like(a.sent.at(-1), { message: { cmd: 'NODE_clusterd:accept', limit: 2 }, handle: true });
  // A full too: the limit rises a step; B accepts again, and A, still lagging, is sent nothing.
  const full = a.sent.length;
  report(a, 'NODE_clusterd:full', 2);
  t.like(b.sent.at(-1), { message: { cmd: 'NODE_clusterd:accept', limit: 4 }, handle: true });
  t.is(a.sent.length, full);
  t.is(balancer.cap, 4);
  // Keeping time again, A (at its resume point) accepts alongside B.
  report(a, 'NODE_clusterd:lagging', 2, false);
  t.like(a.sent.at(-1), { message: { cmd: 'NODE_clusterd:accept', limit: 4 }, handle: true });
});

test('FairBalancer: a lagging worker that holds a copy when the master plans is told to pause', async (t) => {
  const { balancer, a, b } = await twoWorkers(t);
  // A says it lags with an older epoch than the copy it holds now (a new accept crossed it): it kept that copy.
  balancer.report(a, { cmd: 'NODE_clusterd:lagging', key: balancer.key, epoch: 0, connections: 0, lagging: true });
  t.like(a.sent.at(-1), { message: { cmd: 'NODE_clusterd:pause' } });
  t.like(lastOf(b, 'NODE_clusterd:accept'), { message: { limit: 2 } });
});

test('FairBalancer: a stalled worker is paused, and sent a copy again once its loop turns', async (t) => {
  const { balancer, a, b } = await twoWorkers(t);
  a.loadState = { ...a.loadState, stalled: true };
  (balancer as Balancer).health!(a);
  t.like(a.sent.at(-1), { message: { cmd: 'NODE_clusterd:pause' } });
  t.like(lastOf(b, 'NODE_clusterd:limit'), { message: { limit: null } });
  a.loadState = { ...a.loadState, stalled: false };
  (balancer as Balancer).activate(a);
  t.like(a.sent.at(-1), { message: { cmd: 'NODE_clusterd:accept' }, handle: true });
});

test('FairBalancer: a removed (draining) worker is told to stop accepting; the other then has no limit', async (t) => {
  const { balancer, a, b } = await twoWorkers(t);
  balancer.remove(a);
  t.like(a.sent.at(-1), { message: { cmd: 'NODE_clusterd:pause' } });
  t.like(lastOf(b, 'NODE_clusterd:limit'), { message: { limit: null } });
  t.is(balancer.size, 1);
});

test('keepLevels: an even share plus slack, for a worker that held more all interval', (t) => {
  t.deepEqual(keepLevels([{ connections: 24, low: 24 }]), [null], 'one worker alone ends nothing');
  t.deepEqual(keepLevels([{ connections: 24, low: 24 }, { connections: 0, low: 0 }]), [14, null], 'a worker joined: down to an even 12 + 2');
  t.deepEqual(keepLevels([{ connections: 14, low: 14 }, { connections: 10, low: 10 }]), [null, null], 'within slack of even');
  t.deepEqual(keepLevels([{ connections: 40, low: 30 }, { connections: 24, low: 24 }]), [null, null], 'only what it held all along: 30 is within 32 + 2');
  t.deepEqual(keepLevels([{ connections: 3, low: 0 }, { connections: 60, low: 0 }]), [null, null], 'a new connection per request holds nothing');
  t.deepEqual(keepLevels([{ connections: 300, low: 300 }, { connections: 100, low: 100 }, { connections: 200, low: 200 }]), [213, null, null], 'down to an even 200 + 13');
  t.deepEqual(keepLevels([{ connections: 14, low: 14 }, { connections: 0, low: 0 }], 24), [null, null], 'of the most they held lately: 10 ended, not yet reopened');
  t.deepEqual(keepLevels([{ connections: 14, low: 14 }, { connections: 0, low: 0 }]), [9, null], 'of what they hold now');
});

test('catchUpLevel: with every worker within slack of even from above, one far behind brings the others down to an even share', (t) => {
  const load = (connections: number, low = connections, peak = connections) => ({ connections, low, peak });
  t.is(keepLevels([load(8), load(8), load(0)]).every((keep) => keep === null), true, '8 is within an even 6 + 2');
  t.is(catchUpLevel([load(8), load(8), load(0)]), 6, 'a worker added by a scale-up: 16 on 2, then 3');
  t.is(catchUpLevel([load(13), load(13), load(6)]), 11, '32 on 3: 6 is below an even 10 less 2');
  t.is(catchUpLevel([load(6), load(6), load(4)]), null, 'about even: nothing moves');
  t.is(catchUpLevel([load(7), load(6), load(3)]), null, 'within slack of even from below');
  t.is(catchUpLevel([load(24)]), null, 'one worker alone');
  t.is(catchUpLevel([load(2, 2), load(1), load(0)]), null, 'too few connections for slack to tell');
  t.is(catchUpLevel([load(8, 0), load(8, 0), load(0)]), null, 'a new connection per request holds nothing');
  t.is(catchUpLevel([load(8), load(8), load(0, 0, 4)]), null, 'behind now, but it held its share within the report');
  t.is(catchUpLevel([load(6), load(6), load(0)], 16), null, 'connections still reopening: it does not start');
  t.is(catchUpLevel([load(6), load(6), load(0)], 16, true), 6, 'but once started it goes on while one is behind, of the most held lately');
  t.is(catchUpLevel([load(6), load(6), load(3)], 16, true), null, 'and stops once none is');
});

const keeps = (worker: StandIn) =>
  worker.sent.filter(({ message }) => message.cmd === 'NODE_clusterd:end-connections').map(({ message }) => (message as { keep: number | null }).keep);

test('FairBalancer: a worker that held more than an even share plus slack is asked down to it; only changes are sent, and a stop once even', async (t) => {
  const { balancer, a, b } = await twoWorkers(t);
  // Even: nothing is asked.
  load(balancer, a, 13, 13, 13);
  load(balancer, b, 11, 11, 11);
  balancer.settle();
  t.deepEqual([keeps(a), keeps(b)], [[], []]);
  // A holds 24 and B none (B restarted, say).
  load(balancer, a, 24, 24, 24, 11, 0);
  load(balancer, b, 0, 11, 0, 0, 11);
  balancer.settle();
  t.deepEqual([keeps(a), keeps(b)], [[14], []]);
  // Halfway, the same level: nothing new is sent (the worker counts what it has told already).
  balancer.settle();
  load(balancer, a, 18, 24, 18, 0, 6);
  load(balancer, b, 6, 6, 0, 6, 0);
  balancer.settle();
  t.deepEqual(keeps(a), [14]);
  // Down to it: stopped, once.
  load(balancer, a, 14, 18, 14, 0, 4);
  load(balancer, b, 10, 10, 6, 4, 0);
  balancer.settle();
  balancer.settle();
  t.deepEqual(keeps(a), [14, null]);
  t.deepEqual(keeps(b), []);
});

test('FairBalancer: no worker is asked to end connections toward a stalled one', async (t) => {
  const { balancer, a, b } = await twoWorkers(t);
  b.loadState = { ...b.loadState, stalled: true };
  (balancer as Balancer).health!(b);
  load(balancer, a, 24, 24, 24);
  load(balancer, b, 0, 0, 0);
  balancer.settle();
  t.deepEqual(keeps(a), []);
});

/** Two workers, A holding all 24 connections: A is asked down to an even 12 + 2. */
async function oneAskedDown(t: ExecutionContext): Promise<{ balancer: FairBalancer; a: StandIn; b: StandIn }> {
  const { balancer, a, b } = await twoWorkers(t);
  load(balancer, a, 24, 24, 24);
  load(balancer, b, 0, 0, 0);
  balancer.settle();
  t.deepEqual(keeps(a), [14]);
  return { balancer, a, b };
}

test('FairBalancer: connections ended and not yet reopened do not lower the share: nothing more is asked until the most held lately falls', async (t) => {
  const { balancer, a, b } = await oneAskedDown(t);
  // A ended its 10, whose clients have not sent their next request yet (seen in CI: asked down to 9).
  load(balancer, a, 14, 24, 14, 0, 10);
  load(balancer, b, 0, 0, 0);
  balancer.settle();
  t.deepEqual(keeps(a), [14, null]);
  // They do not come back: while the tick that saw 24 is one of the last HELD_TICKS, nothing more;
  // once it is out, what is held now is the share.
  for (let tick = 2; tick < HELD_TICKS; tick++) balancer.settle();
  t.deepEqual(keeps(a), [14, null]);
  load(balancer, a, 14, 14, 14);
  balancer.settle();
  t.deepEqual([keeps(a), keeps(b)], [[14, null, 9], []]);
});

test('FairBalancer: nothing is asked while a worker\'s loop lags, and an ask still out is stopped', async (t) => {
  const { balancer, a, b } = await oneAskedDown(t);
  // B's loop lags (p99 past 100 ms, turning): A's reconnecting clients could land on it.
  b.loadState = { ...b.loadState, lagP99: 150 };
  balancer.settle();
  balancer.settle();
  t.deepEqual(keeps(a), [14, null]);
  // Calm again: asked again.
  b.loadState = { ...b.loadState, lagP99: 2 };
  balancer.settle();
  t.deepEqual(keeps(a), [14, null, 14]);
});

test('FairBalancer: a worker asked down to a level and then stalled is told to stop, and asked again once it turns', async (t) => {
  const { balancer, a } = await oneAskedDown(t);
  a.loadState = { ...a.loadState, stalled: true };
  (balancer as Balancer).health!(a);
  balancer.settle();
  t.deepEqual(keeps(a), [14, null]);
  a.loadState = { ...a.loadState, stalled: false };
  (balancer as Balancer).activate(a);
  balancer.settle();
  t.deepEqual(keeps(a), [14, null, 14]);
});
