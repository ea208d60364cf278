// scripts/build-native.mjs (the install script) keeps a helper only if it loads here with every
// function the source has: a tarball's binary from another platform, or one built from an older
// source, is as new as the source once npm has unpacked it, so dates alone kept it, unbuilt and unsaid.
import test from 'ava';
import { execa } from 'execa';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A package root holding what the install script needs: the script and the C source, as the tarball has them. */
function packageCopy(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-native-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const folder of ['scripts', 'native', 'dist/native']) mkdirSync(join(dir, folder), { recursive: true });
  copyFileSync(join(ROOT, 'scripts/build-native.mjs'), join(dir, 'scripts/build-native.mjs'));
  copyFileSync(join(ROOT, 'native/clusterd.c'), join(dir, 'native/clusterd.c'));
  return dir;
}

/** Places `contents` as the helper, dated after the source (as npm's unpacking may leave it). */
function placeHelper(dir: string, contents: string | Buffer): string {
  const helper = join(dir, 'dist/native/clusterd.node');
  writeFileSync(helper, contents);
  const later = new Date(Date.now() + 60_000);
  utimesSync(helper, later, later);
  return helper;
}

/** The helper's exports, loaded in a child process (a bad binary may crash whoever loads it). */
async function exportsOf(helper: string): Promise<string[]> {
  const loaded = await execa(process.execPath, ['-e', `console.log(JSON.stringify(Object.keys(require(${JSON.stringify(helper)}))))`], { reject: false });
  return loaded.exitCode === 0 ? (JSON.parse(loaded.stdout) as string[]) : [];
}

/** Runs the install script as npm does, from another directory than the package's (npm rebuild's cwd is the package; a user's may be anything). */
function build(dir: string) {
  return execa(process.execPath, [join(dir, 'scripts/build-native.mjs')], { cwd: tmpdir(), reject: false });
}

test('a helper that does not load here (another platform\'s) is rebuilt, though newer than its source', async (t) => {
  const dir = packageCopy(t);
  const helper = placeHelper(dir, '\x7fELF not for this machine');
  const built = await build(dir);
  t.is(built.exitCode, 0, built.stderr);
  t.true((await exportsOf(helper)).includes('dup2'), built.stderr);
});

test('a helper built from an older source (a function missing) is rebuilt; a good one is kept as it is', async (t) => {
  const dir = packageCopy(t);
  const source = join(dir, 'native/clusterd.c');
  const full = readFileSync(source, 'utf8');
  writeFileSync(source, full.replace(/^\s*\{"dup2", NULL, js_dup2,.*\n/m, '').replace(/static napi_value js_dup2[\s\S]*?\n}\n/, ''));
  t.is((await build(dir)).exitCode, 0);
  const helper = join(dir, 'dist/native/clusterd.node');
  t.false((await exportsOf(helper)).includes('dup2'), 'the older source built a helper without dup2');
  // The full source back, dated before the helper: a date check keeps the old helper.
  writeFileSync(source, full);
  const earlier = new Date(Date.now() - 60_000);
  utimesSync(source, earlier, earlier);
  t.is((await build(dir)).exitCode, 0);
  t.true((await exportsOf(helper)).includes('dup2'));
  const kept = statSync(helper).mtimeMs;
  t.is((await build(dir)).exitCode, 0);
  t.is(statSync(helper).mtimeMs, kept, 'a helper that loads with every function is not built again');
});
