// `profile`'s summary weighs each sample by the time it stands for: V8 takes no sample while the thread
// is inside a long native call, so one sample before it stands for all of it. Counted one each, a 100 MB
// readFileSync per request read as 3.4% beside (idle) 64.8%, where it took 35% of the time.
import test from 'ava';
import { CLUSTERD_RUNTIME, loopLines, ownPrefixes, topSelfTime, UNSAMPLED } from '../../src/cli/profile-view.js';
import { RUNTIME_PREFIXES } from '../../src/master/blocking-report.js';
import type { CpuProfile, LoopBreakdown } from '../../src/loop/types.js';

const OWN = { ownPrefixes: ownPrefixes(RUNTIME_PREFIXES) };

const node = (id: number, functionName: string, url = '', children: number[] = []) => ({
  id,
  callFrame: { functionName, url, lineNumber: url ? 9 : -1, columnNumber: 0, scriptId: '0' },
  children,
});

test('a native call with few samples but most of the time is on top: samples weigh by their time deltas, as in DevTools', (t) => {
  // Ten idle samples 1 ms apart, then one in createUnsafeBuffer that lasts 90 ms (the next sample comes
  // 90 ms later), then two more idle ones; the profile ends 1 ms after the last.
  const samples = [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 2];
  const timeDeltas = [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 90_000, 1000];
  const startTime = 0;
  const endTime = timeDeltas.reduce((sum, delta) => sum + delta, 0) + 1000;
  const profile: CpuProfile = { nodes: [node(1, '(root)', '', [2, 3]), node(2, '(idle)'), node(3, 'createUnsafeBuffer', 'node:internal/buffer')], startTime, endTime, samples, timeDeltas };
  const [first, second, third] = topSelfTime(profile, 10, OWN);
  t.like(first, { functionName: 'createUnsafeBuffer', line: 10, samples: 1 });
  t.like(second, { functionName: '(idle)', samples: 12 });
  // 90 of the 103 ms of the profile; the 1 ms before the first sample is no function's.
  t.is(Math.round(first!.pct), Math.round((100 * 90) / 103));
  t.like(third, { functionName: UNSAMPLED, samples: 0 });
  t.is(Math.round(first!.pct + second!.pct + third!.pct), 100);
});

test('the time before V8\'s first sample counts, as (unsampled): the shares are of the whole window the header gives', (t) => {
  // A busy worker's profile read "over 3.9 s ... 85.1% (idle)": its first sample came 1847 ms in, and the
  // shares were of the 2 s after it.
  const samples = [2, 2, 3];
  const timeDeltas = [1_847_000, 1_000_000, 1_000_000];
  const profile: CpuProfile = { nodes: [node(1, '(root)', '', [2, 3]), node(2, '(idle)'), node(3, 'serializeBig', 'file:///srv/app.mjs')], startTime: 0, endTime: 3_847_000 + 53_000, samples, timeDeltas };
  const top = topSelfTime(profile, 10, OWN);
  const pct = (name: string) => Math.round(top.find((entry) => entry.functionName === name)!.pct * 10) / 10;
  t.is(pct(UNSAMPLED), Math.round((1000 * 1847) / 3900) / 10);
  t.is(pct('(idle)'), Math.round((1000 * 2000) / 3900) / 10);
  t.is(pct('serializeBig'), Math.round((1000 * 53) / 3900) / 10);
  t.is(Math.round(top.reduce((sum, entry) => sum + entry.pct, 0)), 100);
});

test('clusterd\'s own frames are one entry, (clusterd runtime): its runtime\'s files, the stack probe, and the native calls they make', (t) => {
  // The top 10 listed `(anonymous) clusterd-capture-probe:1`, `writeBuffer (native, from beat) .../src/loop/heartbeat.ts:39`,
  // `wrapped .../src/worker/servers.ts:210` and `percentile (native, from summarizeLag) lag.ts:25` one by one.
  const own = 'file:///srv/node_modules/clusterd/dist/';
  const profile: CpuProfile = {
    nodes: [
      node(1, '(root)', '', [2, 3, 4, 6, 8]),
      node(2, '(idle)'),
      node(3, '', 'clusterd-capture-probe'),
      node(4, 'beat', 'file:///srv/node_modules/clusterd/src/loop/heartbeat.ts', [5]),
      node(5, 'writeBuffer'),
      node(6, 'wrapped', `${own}worker/servers.js`, [7]),
      node(7, 'handler', 'file:///srv/app.js'),
      node(8, 'handlerOfNode', 'node:http'),
    ],
    startTime: 0,
    endTime: 8000,
    samples: [2, 3, 5, 6, 7, 7, 8, 2],
    timeDeltas: [0, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
  };
  const top = topSelfTime(profile, 10, { ownPrefixes: [own, 'file:///srv/node_modules/clusterd/src/', 'clusterd-capture-probe'] });
  t.deepEqual(
    top.map(({ functionName, url, line, samples, pct }) => [functionName, url, line, samples, pct]),
    [
      [CLUSTERD_RUNTIME, '', 0, 3, 37.5],
      ['(idle)', '', 0, 2, 25],
      ['handler', 'file:///srv/app.js', 10, 2, 25],
      ['handlerOfNode', 'node:http', 10, 1, 12.5],
    ],
  );
});

test('a profile without time deltas counts samples, or hit counts', (t) => {
  const nodes = [{ ...node(2, 'a', 'file:///a.js'), hitCount: 3 }, { ...node(3, 'b', 'file:///b.js'), hitCount: 1 }];
  t.deepEqual(topSelfTime({ nodes, startTime: 0, endTime: 10 }, 10, OWN).map(({ functionName, pct }) => [functionName, pct]), [['a', 75], ['b', 25]]);
  t.deepEqual(topSelfTime({ nodes, startTime: 0, endTime: 10, samples: [3, 3, 2] }, 10, OWN).map(({ functionName, samples }) => [functionName, samples]), [['b', 2], ['a', 1]]);
});

test('a native function is named with its nearest caller that has a place, the app\'s before Node\'s', (t) => {
  // zlib's binding shows as `writeSync`, pbkdf2's as `run`: bare names with no file.
  const profile: CpuProfile = {
    nodes: [
      node(1, '(root)', '', [2, 5]),
      node(2, 'gzipIt', 'file:///srv/app.js', [3]),
      node(3, 'zlibBufferSync', 'node:zlib', [4]),
      node(4, 'writeSync'),
      node(5, '(idle)'),
    ],
    startTime: 0,
    endTime: 4000,
    samples: [4, 4, 4, 5],
    timeDeltas: [0, 1000, 1000, 1000],
  };
  const [first, second] = topSelfTime(profile, 10, OWN);
  t.like(first, { functionName: 'writeSync (native, from gzipIt)', url: 'file:///srv/app.js', line: 10 });
  t.like(second, { functionName: '(idle)', url: '' });
});

test('loop: where HTTP requests\' handlers take the most time, a line points to `clusterd profile`', (t) => {
  const phases = Object.fromEntries(['timers', 'pending', 'poll', 'check', 'close', 'nextTick', 'microtasks', 'idle'].map((name) => [name, { ms: 1, msPerSec: 1, count: 1 }])) as LoopBreakdown['phases'];
  const request = { type: 'HTTPINCOMINGMESSAGE', function: '', url: '', line: 0, count: 21, totalMs: 1402.9, maxMs: 210 };
  const timer = { type: 'Timeout', function: 'tick', url: 'file:///srv/app.js', line: 3, count: 5, totalMs: 10, maxMs: 2 };
  const lines = loopLines(1, { durationMs: 3000, phases, iterationsPerSec: 10, callbacks: [request, timer], overheadPct: 1 });
  t.regex(lines.join('\n'), /HTTP requests' handlers \(HTTPINCOMINGMESSAGE\): `clusterd profile` of this worker names the functions/);
  const timers = loopLines(1, { durationMs: 3000, phases, iterationsPerSec: 10, callbacks: [timer, request], overheadPct: 1 });
  t.notRegex(timers.join('\n'), /clusterd profile/);
});
