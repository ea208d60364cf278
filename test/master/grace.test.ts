// The master's one line when --grace runs out: what the worker's last drain report had open.
import test from 'ava';
import { describeForcedKill, describeGraceOver, type DrainReport } from '../../src/master/grace.js';

const none = { requests: 0, receiving: 0, idle: 0, webSockets: 0, upgraded: 0, http2Sessions: 0, other: 0, handlers: 0 };
const line = (report: DrainReport | null, graceMs = 10_000) => describeGraceOver({ id: 1, pid: 4121, graceMs, report, killSignal: 'SIGTERM' });

test('names what was destroyed, by kind, in one line', (t) => {
  t.is(
    line({ open: { ...none, webSockets: 2, http2Sessions: 1 }, appExits: false }),
    'worker 1 (pid 4121): --grace 10s over: killed (SIGKILL), destroying 2 WebSocket connections, 1 HTTP/2 session',
  );
  t.is(
    line({ open: { ...none, requests: 1, receiving: 2, idle: 3, upgraded: 1, other: 2, http2Sessions: 2, webSockets: 1 }, appExits: true }),
    'worker 1 (pid 4121): --grace 10s over: killed (SIGKILL), destroying 1 WebSocket connection, 1 other upgraded connection, 2 HTTP/2 sessions, ' +
      '1 HTTP request in flight, 2 HTTP requests still being received, 3 idle HTTP connections, 2 other connections',
  );
});

test('onShutdown handlers still running are named', (t) => {
  t.is(line({ open: { ...none, handlers: 2 }, appExits: false }), 'worker 1 (pid 4121): --grace 10s over: killed (SIGKILL) with 2 onShutdown handlers unfinished');
  t.is(
    line({ open: { ...none, webSockets: 1, handlers: 1 }, appExits: false }, 1500),
    'worker 1 (pid 4121): --grace 1500ms over: killed (SIGKILL), destroying 1 WebSocket connection; 1 onShutdown handler unfinished',
  );
});

test('nothing open: the app handles the signal and had not exited', (t) => {
  t.is(line({ open: none, appExits: true }), 'worker 1 (pid 4121): --grace 10s over: killed (SIGKILL): nothing was open, but the app, which listens for SIGTERM, had not exited');
  t.is(line({ open: none, appExits: false }), 'worker 1 (pid 4121): --grace 10s over: killed (SIGKILL) as its drain ended');
});

test('no report: a blocked loop, or --grace 0', (t) => {
  t.is(line(null), 'worker 1 (pid 4121): --grace 10s over: killed (SIGKILL); it never reported on its drain (its loop blocked?)');
  t.is(line(null, 0), 'worker 1 (pid 4121): --grace 0ms over: killed (SIGKILL) without draining');
});

test('a forced stop says the same of each worker it kills, or that the worker had not said yet', (t) => {
  const forced = (report: DrainReport | null, draining = true) => describeForcedKill({ id: 2, pid: 4122, report, draining, killSignal: 'SIGTERM' });
  t.is(forced({ open: { ...none, requests: 3 }, appExits: false }), 'worker 2 (pid 4122): stop forced: killed (SIGKILL), destroying 3 HTTP requests in flight');
  t.is(forced({ open: none, appExits: true }), 'worker 2 (pid 4122): stop forced: killed (SIGKILL): nothing was open, but the app, which listens for SIGTERM, had not exited');
  t.is(forced(null), 'worker 2 (pid 4122): stop forced: killed (SIGKILL) before it reported on its drain');
  t.is(forced(null, false), 'worker 2 (pid 4122): stop forced: killed (SIGKILL) before it was asked to drain (what it had open is not known)');
});
