// mapProfile(): a profile's frames moved to their original sources, from what the worker's Node knows
// (its answer parsed, never trusted) or, failing that, a .js.map on disk.
import test from 'ava';
import { buildSync } from 'esbuild';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { mapProfile } from '../../src/loop/profile-map.js';
import type { CpuProfile } from '../../src/loop/types.js';

type Node = CpuProfile['nodes'][number] & { positionTicks?: Array<{ line: number; ticks: number }> };

function profileOf(...frames: Array<[string, string, number, number]>): CpuProfile {
  const nodes: Node[] = frames.map(([functionName, url, lineNumber, columnNumber], index) => ({
    id: index + 1,
    callFrame: { functionName, scriptId: String(index + 1), url, lineNumber, columnNumber },
    hitCount: 1,
    positionTicks: [{ line: lineNumber + 1, ticks: 1 }],
  }));
  return { nodes, startTime: 0, endTime: 1, samples: [], timeDeltas: [] };
}

/** A stand-in inspector session that answers Runtime.evaluate with `value` (and records the expressions). */
function session(value: unknown): { post(method: string, params?: object): Promise<unknown>; asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    post: async (_method, params) => {
      asked.push((params as { expression: string }).expression);
      return { result: { value } };
    },
  };
}

test('frames the worker maps move to the original source; the others, and Node\'s own, stay; per-line ticks go with a mapped frame', async (t) => {
  const profile = profileOf(['burn', 'file:///srv/app.ts', 1, 1200], ['tick', 'file:///srv/lib.js', 9, 4], ['listOnTimeout', 'node:internal/timers', 500, 3], ['(idle)', '', -1, -1]);
  const worker = session([['file:///srv/app.ts', 41, 10], null]);
  await mapProfile(worker, profile);
  t.is(worker.asked.length, 1);
  const [burn, tick, timers, idle] = profile.nodes as Node[];
  t.like(burn!.callFrame, { functionName: 'burn', url: 'file:///srv/app.ts', lineNumber: 40, columnNumber: 9 });
  t.is(burn!.positionTicks, undefined);
  t.like(tick!.callFrame, { url: 'file:///srv/lib.js', lineNumber: 9, columnNumber: 4 });
  t.deepEqual(tick!.positionTicks, [{ line: 10, ticks: 1 }]);
  t.like(timers!.callFrame, { url: 'node:internal/timers', lineNumber: 500 });
  t.like(idle!.callFrame, { url: '', lineNumber: -1 });
});

test('an answer that is not one position or null per frame asked is ignored: the frames stay as they were', async (t) => {
  for (const value of [null, 'text', [['file:///x.ts', 1, 1]], [['file:///x.ts', -1, 1], null], [[7, 1, 1], null], [{ url: 'x' }, null]]) {
    const profile = profileOf(['a', 'file:///srv/a.js', 0, 10], ['b', 'file:///srv/b.js', 3, 2]);
    await mapProfile(session(value), profile);
    t.deepEqual(
      profile.nodes.map(({ callFrame }) => [callFrame.url, callFrame.lineNumber, callFrame.columnNumber]),
      [
        ['file:///srv/a.js', 0, 10],
        ['file:///srv/b.js', 3, 2],
      ],
      JSON.stringify(value),
    );
  }
});

test('a worker that does not answer: the frames are mapped through the .js.map on disk, without waiting for good', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-map-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const source = join(dir, 'app.ts');
  writeFileSync(source, 'export function first(): number {\n  return 1;\n}\n\nexport function second(n: number): number {\n  return n * 2;\n}\n');
  const compiled = join(dir, 'app.mjs');
  buildSync({ entryPoints: [source], outfile: compiled, format: 'esm', platform: 'node', sourcemap: true, minifyWhitespace: true, logLevel: 'silent' });
  // Where `second` is in the one-line output.
  const text = readFileSync(compiled, 'utf8');
  const column = text.split('\n')[0]!.indexOf('function second');
  t.true(column > 0);
  const profile = profileOf(['second', pathToFileURL(compiled).href, 0, column]);
  // (A lookup that never ends would hold the profile for good: ava's timeout fails the test then.)
  await mapProfile({ post: () => new Promise(() => {}) }, profile);
  t.like(profile.nodes[0]!.callFrame, { url: pathToFileURL(source).href, lineNumber: 4 });
});
