// What `npm pack` puts in the tarball, and what a project that installs it gets: the files, the
// entry points each module system and TypeScript mode resolves, the licence, the source maps.
import test from 'ava';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The tarball's file list, as `files` and npm's own rules make it (no build: --ignore-scripts). */
async function packed(): Promise<string[]> {
  const { stdout } = await execa('npm', ['pack', '--dry-run', '--json', '--ignore-scripts', '--loglevel=error'], { cwd: ROOT });
  return (JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((file) => file.path);
}

test('the tarball holds the helper\'s source and build script, never a built helper (it would be this machine\'s platform\'s)', async (t) => {
  const files = await packed();
  t.true(files.includes('native/clusterd.c'));
  t.true(files.includes('scripts/build-native.mjs'));
  t.deepEqual(files.filter((file) => file.endsWith('.node') || file.startsWith('dist/native/')), []);
});

test('the tarball carries the licence package.json names', async (t) => {
  const { license } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { license: string };
  t.is(license, 'MIT');
  t.true((await packed()).includes('LICENSE'));
  t.regex(readFileSync(join(ROOT, 'LICENSE'), 'utf8'), /^MIT License\n\nCopyright \(c\) 2026 clusterd contributors\n/);
});

test('every source map the tarball ships carries its TypeScript (src/ is not shipped)', async (t) => {
  const maps = (await packed()).filter((file) => file.endsWith('.map'));
  t.true(maps.length > 100, `${maps.length} maps`);
  t.false((await packed()).some((file) => file.startsWith('src/')));
  const bare = maps.filter((file) => {
    const map = JSON.parse(readFileSync(join(ROOT, file), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
    return map.sourcesContent?.length !== map.sources.length || map.sourcesContent.some((text) => typeof text !== 'string' || text === '');
  });
  t.deepEqual(bare, []);
});
