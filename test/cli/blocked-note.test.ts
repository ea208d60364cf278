// A blocked loop is named by the app's innermost frame, as the blocking sites name it: `status` read
// "in test (<unknown>)" for a regex (V8's RegExp.prototype.test), and `loop` under a promise storm
// showed Node's async_hooks, the measurement's own hooks, and said "nothing was measured" after 7 s.
import test from 'ava';
import { blockedNote } from '../../src/cli/profile-view.js';
import { blockedLines } from '../../src/cli/stack-view.js';
import { RUNTIME_PREFIXES } from '../../src/master/blocking-report.js';
import type { WorkerView } from '../../src/control/types.js';

const regex = [
  { functionName: 'test', url: '', line: 0, column: 0 },
  { functionName: 'evilRegex', url: 'file:///srv/cjs.js', line: 20, column: 23 },
  { functionName: '', url: 'file:///srv/cjs.js', line: 43, column: 50 },
  { functionName: 'emit', url: 'node:events', line: 519, column: 28 },
];
const storm = [
  { functionName: 'emitHook', url: 'node:internal/async_hooks', line: 245, column: 9 },
  { functionName: 'promiseAfterHook', url: 'node:internal/async_hooks', line: 345, column: 26 },
  { functionName: 'after', url: new URL('loop/phases.js', RUNTIME_PREFIXES[0]).href, line: 150, column: 3 },
  { functionName: 'processTicksAndRejections', url: 'node:internal/process/task_queues', line: 95, column: 5 },
];

test('status names a blocked loop by the app\'s innermost frame, not V8\'s or Node\'s', (t) => {
  const worker = (id: number, frames: typeof regex) => ({ id, lastBlocked: { time: Date.UTC(2026, 0, 2, 13, 1, 54), blockedMs: 5019, frames } }) as unknown as WorkerView;
  t.deepEqual(blockedLines({ workers: [worker(1, regex), worker(2, storm)], runtimePrefixes: RUNTIME_PREFIXES }), [
    'worker 1: loop blocked 5019 ms at 2026-01-02 13:01:54 UTC, in evilRegex (file:///srv/cjs.js:20:23)',
    "worker 2: loop blocked 5019 ms at 2026-01-02 13:01:54 UTC, in emitHook (node:internal/async_hooks:245:9), no frame of the app's on the stack",
  ]);
});

test('profile and loop on a blocked worker name the app\'s frame; loop\'s answer lost to its own hooks says so, not "nothing was measured"', (t) => {
  const [head] = blockedNote(1, { state: 'blocked', frames: regex, blockedMs: 1840 }, { runtimePrefixes: RUNTIME_PREFIXES });
  t.is(head, "worker 1's event loop is blocked (silent for 1.8 s, in evilRegex (file:///srv/cjs.js:20:23)): nothing was measured. Its stack:");
  const app = [{ functionName: 'microStorm', url: 'file:///srv/esm.mjs', line: 20, column: 5 }, ...storm];
  t.regex(blockedNote(1, { state: 'blocked', frames: app, blockedMs: 4700 }, { runtimePrefixes: RUNTIME_PREFIXES, during: true })[0]!, /^worker 1's event loop is blocked \(silent for 4\.7 s, in microStorm \(file:\/\/\/srv\/esm\.mjs:20:5\)\): its answer did not come back\. Its stack:$/);
  const [hooks, ...frames] = blockedNote(1, { state: 'blocked', frames: storm, blockedMs: 4700 }, { runtimePrefixes: RUNTIME_PREFIXES, during: true });
  t.regex(hooks!, /no frame of the app's on the stack\): its answer did not come back: the measurement's own async_hooks, which run for every promise, blocked it/);
  t.is(frames.length, storm.length);
});

test('the app\'s frame is told from clusterd\'s by where the cluster\'s clusterd runs, not where this client\'s is installed', (t) => {
  // The master's clusterd, installed elsewhere than this client's (--control from another machine).
  const theirs = ['file:///opt/other/node_modules/clusterd/dist/', 'file:///opt/other/node_modules/clusterd/src/'];
  const inRuntime = [{ functionName: 'after', url: `${theirs[0]}loop/phases.js`, line: 150, column: 3 }, ...regex.slice(1)];
  const worker = { id: 1, lastBlocked: { time: Date.UTC(2026, 0, 2, 13, 1, 54), blockedMs: 5019, frames: inRuntime } } as unknown as WorkerView;
  t.deepEqual(blockedLines({ workers: [worker], runtimePrefixes: theirs }), ['worker 1: loop blocked 5019 ms at 2026-01-02 13:01:54 UTC, in evilRegex (file:///srv/cjs.js:20:23)']);
  const stormThere = storm.map((frame) => (frame.functionName === 'after' ? { ...frame, url: `${theirs[0]}loop/phases.js` } : frame));
  const [hooks] = blockedNote(1, { state: 'blocked', frames: stormThere, blockedMs: 4700 }, { runtimePrefixes: theirs, during: true });
  t.regex(hooks!, /the measurement's own async_hooks/);
});
