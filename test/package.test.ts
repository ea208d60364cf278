// What `npm pack` puts in the tarball, and what a project that installs it gets: the files, the
// entry points each module system and TypeScript mode resolves, the licence, the source maps.
import test from 'ava';
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

/** A CommonJS project (no "type") with this checkout as its node_modules/clusterd, and a file that imports both entries. */
function commonJsProject(t: { teardown(fn: () => void): void }): string {
  const project = mkdtempSync(join(tmpdir(), 'clusterd-cjs-'));
  t.teardown(() => rmSync(project, { recursive: true, force: true }));
  mkdirSync(join(project, 'node_modules'));
  symlinkSync(ROOT, join(project, 'node_modules/clusterd'));
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
  writeFileSync(
    join(project, 'use.ts'),
    "import { start, type StartOptions } from 'clusterd';\nimport { onShutdown } from 'clusterd/worker';\nconst options: StartOptions = { entry: 'app.js' };\nexport { start, onShutdown, options };\n",
  );
  return project;
}

/** tsc on use.ts with this module system and resolution: its errors, or '' when it type-checks. */
async function typecheck(project: string, module: string, moduleResolution: string): Promise<string> {
  const flags = ['--noEmit', '--strict', '--target', 'es2022', '--module', module, '--moduleResolution', moduleResolution, '--types', 'node', '--typeRoots', join(ROOT, 'node_modules/@types')];
  const result = await execa(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), ...flags, 'use.ts'], { cwd: project, reject: false });
  return result.exitCode === 0 ? '' : result.stdout;
}

test('a CommonJS project finds the types under "module": "commonjs" (node10) and nodenext, and require() loads the package', async (t) => {
  const project = commonJsProject(t);
  const [node10, nodenext, node16] = await Promise.all([typecheck(project, 'commonjs', 'node10'), typecheck(project, 'nodenext', 'nodenext'), typecheck(project, 'node16', 'node16')]);
  t.is(node10, '');
  t.is(nodenext, '');
  // node16 from a CommonJS file refuses to require() an ES module (TS1479): the README says so.
  t.regex(node16, /TS1479/);
  const loaded = await execa(process.execPath, ['-e', "const c = require('clusterd'); const w = require('clusterd/worker'); console.log(typeof c.start, typeof w.onShutdown, require('clusterd/package.json').name)"], { cwd: project, reject: false });
  t.is(loaded.stdout, 'function function clusterd', loaded.stderr);
});
