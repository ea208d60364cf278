// `loop` and `profile` of a TypeScript entry name the lines of the .ts file: tsx compiles each module
// to one generated line, and the inspector applies no source maps, so every callback and function of
// the file was reported at line 2 (and `loop`'s callbacks of one file were one entry).
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, startCluster } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';

const entry = fixture('busy-timers.ts');
/** The 1-based line of the first line of the fixture that includes `text`. */
const lineOf = (text: string): number => readFileSync(entry, 'utf8').split('\n').findIndex((line) => line.includes(text)) + 1;

test('loop: the callbacks of a TypeScript entry are told apart, each at its line in the .ts file', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(entry, { instances: 1, flags: ['--name', 'tsloop'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const result = await ctl.run(['loop', 'tsloop', '1', '--duration', '1s', '--json']);
  t.is(result.exitCode, 0, String(result.stderr));
  const { callbacks } = JSON.parse(String(result.stdout)) as { callbacks: Array<{ type: string; url: string; line: number; count: number }> };
  const own = callbacks.filter((callback) => callback.url.endsWith('/busy-timers.ts'));
  t.log(own);
  t.deepEqual(own.map(({ line }) => line).sort((a, b) => a - b), [lineOf('burnSquares({'), lineOf('burnCubes({')]);
  t.true(own.every(({ type, count }) => type === 'Timeout' && count > 0));
});

test('profile: the frames of a TypeScript entry are at their lines in the .ts file, in the summary and the .cpuprofile', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(entry, { instances: 1, flags: ['--name', 'tsprof'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-tsprof-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'ts.cpuprofile');
  const result = await ctl.run(['profile', 'tsprof', '1', '--duration', '1s', '--out', out]);
  t.is(result.exitCode, 0, String(result.stderr));
  const profile = JSON.parse(readFileSync(out, 'utf8')) as { nodes: Array<{ callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }> };
  // Where the time goes: the burning functions, or the timers' arrows that call them once V8 has
  // inlined them (Node 24 does).
  const busy = new Set(['function burnSquares(', 'function burnCubes(', 'burnSquares({', 'burnCubes({'].map(lineOf));
  const frames = profile.nodes.filter(({ callFrame, hitCount = 0 }) => callFrame.url.endsWith('/busy-timers.ts') && hitCount > 0);
  t.true(frames.length >= 2, JSON.stringify(frames));
  for (const { callFrame } of frames) t.true(busy.has(callFrame.lineNumber + 1), `${callFrame.functionName || '(anonymous)'} at line ${callFrame.lineNumber + 1}`);
  const listed = String(result.stdout).split('most self time:\n')[1]!.split('\n').filter((line) => line.includes('/busy-timers.ts:'));
  t.true(listed.length >= 2, String(result.stdout));
  for (const line of listed) t.true(busy.has(Number(line.split(':').pop())), line);
});
