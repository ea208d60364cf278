// Issue 2, point 6: a worker's lifecycle is one transition function that refuses illegal edges.
import test from 'ava';
import { IllegalTransitionError, isAccepting, isUp, transition, type WorkerState } from '../../src/master/worker-state.js';

const STATES: WorkerState[] = ['starting', 'ready', 'not-listening', 'stopping', 'exited'];
const LEGAL = new Set([
  'starting->ready', 'starting->stopping', 'starting->exited',
  'ready->not-listening', 'ready->stopping', 'ready->exited',
  'not-listening->ready', 'not-listening->stopping', 'not-listening->exited',
  'stopping->exited',
]);

const legal = test.macro({
  exec(t, from: WorkerState, to: WorkerState) {
    t.is(transition(from, to), to);
  },
  title: (_title, from: WorkerState, to: WorkerState) => `${from} -> ${to} is allowed`,
});

const illegal = test.macro({
  exec(t, from: WorkerState, to: WorkerState) {
    const error = t.throws(() => transition(from, to), { instanceOf: IllegalTransitionError });
    t.true(error!.message.includes(`${from} -> ${to}`), error!.message);
  },
  title: (_title, from: WorkerState, to: WorkerState) => `${from} -> ${to} is refused`,
});

// Every one of the 25 pairs, so that an edge added or lost by mistake fails a test.
for (const from of STATES) {
  for (const to of STATES) {
    if (LEGAL.has(`${from}->${to}`)) test(legal, from, to);
    else test(illegal, from, to);
  }
}

const accepting = test.macro({
  exec(t, state: WorkerState, waitReady: boolean, expected: boolean) {
    t.is(isAccepting(state, waitReady), expected);
  },
  title: (_title, state: WorkerState, waitReady: boolean, expected: boolean) =>
    `a ${state} worker ${expected ? 'takes' : 'takes no'} new connections${waitReady ? ' under --wait-ready' : ''}`,
});
for (const [state, waitReady, expected] of [
  ['starting', false, true],
  ['starting', true, false],
  ['ready', false, true],
  ['ready', true, true],
  ['not-listening', false, false],
  ['not-listening', true, false],
  ['stopping', false, false],
  ['stopping', true, false],
  ['exited', false, false],
  ['exited', true, false],
] as const) {
  test(accepting, state, waitReady, expected);
}

test('up (booted, not stopping): ready, or not listening for now', (t) => {
  t.deepEqual(STATES.filter((state) => isUp(state)), ['ready', 'not-listening']);
});
