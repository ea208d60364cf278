// The build starts from an empty dist/ (but for the native helper): tsc never deletes an output whose
// source is gone, and `npm pack` shipped such files (dist/cli/node-options.js after the move to src/system/).
import test from 'ava';
import { execa } from 'execa';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

test('the build\'s first step empties dist/ but for the native helper', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-clean-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const folder of ['scripts', 'dist/cli', 'dist/native']) mkdirSync(join(dir, folder), { recursive: true });
  copyFileSync(join(ROOT, 'scripts/clean-dist.mjs'), join(dir, 'scripts/clean-dist.mjs'));
  writeFileSync(join(dir, 'dist/cli/node-options.js'), '// its source moved away\n');
  writeFileSync(join(dir, 'dist/index.js'), '');
  writeFileSync(join(dir, 'dist/native/clusterd.node'), 'the helper');
  const clean = await execa(process.execPath, [join(dir, 'scripts/clean-dist.mjs')], { cwd: tmpdir(), reject: false });
  t.is(clean.exitCode, 0, clean.stderr);
  t.false(existsSync(join(dir, 'dist/cli')));
  t.false(existsSync(join(dir, 'dist/index.js')));
  t.is(readFileSync(join(dir, 'dist/native/clusterd.node'), 'utf8'), 'the helper');
  // And with no dist/ at all (a fresh clone), nothing to do.
  rmSync(join(dir, 'dist'), { recursive: true });
  t.is((await execa(process.execPath, [join(dir, 'scripts/clean-dist.mjs')], { reject: false })).exitCode, 0);
});

test('npm run build runs it first', (t) => {
  const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  t.regex(scripts.build!, /^node scripts\/clean-dist\.mjs && /);
});
