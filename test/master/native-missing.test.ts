// A master that runs without the native helper (no compiler, install scripts not run, a binary for
// another platform) says so once at start, on stderr in the foreground: why, what it costs, and the
// command that builds it. It said so only in a -d log, inside another line, or not at all.
import test from 'ava';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixture, launch } from '../helpers/cluster.js';
import { nativeMissingText } from '../../src/master/native-missing.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** This checkout's clusterd as installed without its helper: what the tarball holds, less dist/native/. */
function installedWithoutHelper(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-nohelper-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const path of ['bin', 'proto', 'native', 'scripts/build-native.mjs', 'package.json']) cpSync(join(ROOT, path), join(dir, path), { recursive: true });
  cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true, filter: (source) => !source.startsWith(join(ROOT, 'dist/native')) });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

test('without the native helper the master says so once on stderr, with why and how to build it', async (t) => {
  const dir = installedWithoutHelper(t);
  const master = launch(['start', fixture('hello.js'), '-i', '1', '--name', 'nohelper'], { cli: join(dir, 'bin/clusterd.js') });
  t.teardown(() => master.process.kill('SIGKILL'));
  await master.waitForLine((line) => / ready on /.test(line.message));
  t.is(master.process.kill('SIGTERM'), true);
  t.is(await master.exited, 0);
  const said = master.stderr.filter((line) => line.includes('native helper'));
  t.deepEqual(said, [`clusterd: ${nativeMissingText('not built', { pid1: false }).replace(join(ROOT, 'scripts'), join(dir, 'scripts'))}`]);
  t.regex(said[0]!, /`node \/.*\/scripts\/build-native\.mjs`/);
});

test('the line names what is lost, and as PID 1 the container\'s way out', (t) => {
  const text = nativeMissingText('not built', { pid1: true });
  t.regex(text, /^native helper not loaded \(not built\): workers get sessions of their own .* no zombie reaping as PID 1, .*--log-file; as PID 1, run the container with an init \(docker run --init\)/);
  t.false(text.includes('\n'));
});
