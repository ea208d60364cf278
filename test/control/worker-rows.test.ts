// One rule for a worker's shown state and for the process that speaks for an id, used by status,
// top, scale, /metrics and the totals: scale picked an id's last row (a successor starting) where
// /metrics picked the worker still holding the id (stopping), and stack-view the first row listed.
import test from 'ava';
import { decodeStatus, encodeStatus } from '../../src/control/convert.js';
import { countReady, isBlocked, onePerId, shownState } from '../../src/control/worker-rows.js';
import { blockedMs } from '../../src/master/status.js';
import { readiness } from '../../src/cli/scale.js';
import { clusterStatus, worker } from './helpers/fake-source.js';

test('a ready worker whose loop is blocked now is blocked; no other is', (t) => {
  t.true(isBlocked({ state: 'ready', blockedMs: 1200 }));
  t.false(isBlocked({ state: 'ready', blockedMs: 0 }));
  t.false(isBlocked({ state: 'starting', blockedMs: 1200 }));
  t.is(shownState({ state: 'ready', blockedMs: 1200 }), 'blocked');
  t.is(shownState({ state: 'not-listening', blockedMs: 0 }), 'not-listening');
});

test('countReady: ready and not blocked, and ready but blocked; a start-up or a drain silent as long counts in neither', (t) => {
  const rows = [
    { state: 'ready', blockedMs: 0 },
    { state: 'ready', blockedMs: 1500 },
    { state: 'starting', blockedMs: 0 },
    { state: 'not-listening', blockedMs: 0 },
  ];
  t.deepEqual(countReady(rows), { ready: 1, blocked: 1 });
  // What the master reads off a process: a blocked loop counts only once the worker is ready.
  const silent = { blocked: true, silentMs: 1500 };
  t.is(blockedMs({ state: 'ready', ...silent }), 1500);
  t.is(blockedMs({ state: 'starting', ...silent }), 0);
  t.is(blockedMs({ state: 'stopping', ...silent }), 0);
  t.is(blockedMs({ state: 'ready', blocked: false, silentMs: 400 }), 0);
});

test('the process that speaks for an id: ready, then not listening, then the one leaving, then one starting; the newer of two alike', (t) => {
  const rows = [
    worker(1, { pid: 11, state: 'stopping', generation: 1 }),
    worker(1, { pid: 12, state: 'starting', generation: 2 }),
    worker(2, { pid: 21, state: 'ready', generation: 1 }),
    worker(2, { pid: 22, state: 'starting', generation: 2 }),
    worker(3, { pid: 31, state: 'starting', generation: 2 }),
    worker(3, { pid: 32, state: 'not-listening', generation: 1 }),
    worker(4, { pid: 41, state: 'ready', generation: 1 }),
    worker(4, { pid: 42, state: 'ready', generation: 2 }),
  ];
  t.deepEqual(onePerId(rows).map((row) => row.pid), [11, 21, 32, 42]);
  // scale says what the same process is, as /metrics exports it.
  const view = decodeStatus(encodeStatus(clusterStatus('rows', rows), { history: false }));
  t.deepEqual(readiness(view, 4), { ready: 2, others: ['worker 1 stopping', 'worker 3 not listening'] });
});
