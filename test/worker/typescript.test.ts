// Issue 13, point 2: a project whose tsconfig.json sets experimentalDecorators and
// emitDecoratorMetadata runs as tsc would build it: the `design:paramtypes` metadata is there, so
// constructor injection works and requests succeed (under esbuild alone the app starts, listens,
// and every request fails). In both module systems, with tsconfig `paths` resolved by tsx.
import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { CACHE_MAX_AGE_MS, cacheDir, formatOf, lazyTranspiler, pruneCache, type TranspilerModule } from '../../src/worker/typescript/transpiler.js';
import * as swcTranspiler from '../../src/worker/typescript/swc.js';
import { typescriptSibling } from '../../src/worker/typescript/siblings.js';
import { ExitCode } from '../../src/exit-codes.js';
import { fixture, get, killOnTeardown, launch, startCluster } from '../helpers/cluster.js';

const injected = test.macro({
  async exec(t, project: string, kind: string) {
    const cluster = await startCluster(fixture(`${project}/src/main.ts`), { instances: 2, cwd: tmpdir() });
    killOnTeardown(t, cluster.process);
    const workers = new Set<string>();
    for (let asked = 0; asked < 50 && workers.size < 2; asked++) {
      const response = await get(cluster.port);
      t.is(response.status, 200, response.body);
      const answer = JSON.parse(response.body) as { answer: string; worker: string; oneClock?: boolean };
      // Controller <- Greeter <- Clock: two levels of injection, Clock imported through `paths`.
      t.is(answer.answer, `hello ${kind}, 2026`);
      // And through a relative path too, in the ES module app: the same module, not a second copy.
      if (kind === 'esm') t.is(answer.oneClock, true);
      workers.add(answer.worker);
    }
    t.deepEqual([...workers].sort(), ['1', '2']);
    t.is(await cluster.stop(), 0);
  },
  title: (_title, project: string, kind: string) => `${kind}: constructor injection from decorator metadata works on every worker (${project})`,
});
test(injected, 'ts-decorators-cjs', 'cjs');
test(injected, 'ts-decorators-esm', 'esm');

test('formatOf: the module system of a file the layer compiles, as Node decides it', (t) => {
  t.is(formatOf(fixture('ts-decorators-cjs/src/main.ts')), 'commonjs');
  t.is(formatOf(fixture('ts-decorators-esm/src/lib/clock.ts')), 'module');
  t.is(formatOf(fixture('entry-mts.mts')), 'module');
  t.is(formatOf(fixture('entry-cts.cts')), 'commonjs');
  // The repository's package.json says "module": test/fixtures has none of its own.
  t.is(formatOf(fixture('entry-ts.ts')), 'module');
  t.is(formatOf(fixture('hello.js')), null);
  t.is(formatOf('/srv/app/node_modules/pkg/index.ts'), null);
});

test('formatOf: a folder without package.json takes the type of the nearest one above', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-format-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'esm/deeper/still'), { recursive: true });
  mkdirSync(join(dir, 'cjs/deeper'), { recursive: true });
  writeFileSync(join(dir, 'esm/package.json'), '{ "type": "module" }');
  writeFileSync(join(dir, 'cjs/package.json'), '{ "name": "no-type" }');
  t.is(formatOf(join(dir, 'esm/deeper/still/main.ts')), 'module');
  t.is(formatOf(join(dir, 'cjs/deeper/main.ts')), 'commonjs');
  t.is(formatOf(join(dir, 'cjs/deeper/main.tsx')), 'commonjs');
});

test('typescriptSibling: an ES module\'s `./x.js` is the project\'s `x.ts` beside it, as Node would name it; anything else is left to tsx', (t) => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'clusterd-sibling-')));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const files: Record<string, string> = {
    'esm/package.json': '{ "type": "module" }',
    'esm/main.ts': '',
    'esm/lib/a.ts': '',
    'esm/view.tsx': '',
    'esm/both.ts': '',
    'esm/both.js': '',
    'esm/m.mts': '',
    'esm/c.cts': '',
    'esm/plain.js': '',
    'esm/node_modules/pkg/x.ts': '',
    'real/target.ts': '',
    'cjs/main.ts': '',
    'cjs/a.ts': '',
    // Names that read otherwise as URLs: Node would not look for these files.
    'esm/hash#x.ts': '',
    'esm/back\\slash.ts': '',
    'esm/pct%41.ts': '',
  };
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  mkdirSync(join(dir, 'esm/folder.ts'));
  writeFileSync(join(dir, 'real/package.json'), '{ "type": "module" }');
  symlinkSync(join(dir, 'real/target.ts'), join(dir, 'esm/linked.ts'));
  const from = pathToFileURL(join(dir, 'esm/main.ts')).href;
  const url = (name: string): string => pathToFileURL(join(dir, name)).href;

  t.deepEqual(typescriptSibling('./lib/a.js', from), { url: url('esm/lib/a.ts'), format: 'module' });
  t.deepEqual(typescriptSibling('./view.js', from), { url: url('esm/view.tsx'), format: 'module' });
  t.deepEqual(typescriptSibling('./m.mjs', from), { url: url('esm/m.mts'), format: 'module' });
  t.deepEqual(typescriptSibling('./c.cjs', from), { url: url('esm/c.cts'), format: 'commonjs' });
  t.deepEqual(typescriptSibling('../main.js', pathToFileURL(join(dir, 'esm/lib/a.ts')).href), { url: url('esm/main.ts'), format: 'module' });
  // Symlinks resolved, as Node resolves them (one module, whichever path imports it).
  t.deepEqual(typescriptSibling('./linked.js', from), { url: url('real/target.ts'), format: 'module' });
  // Left to tsx (and Node):
  t.is(typescriptSibling('./both.js', from), null, 'a JavaScript file of that name exists');
  t.is(typescriptSibling('./plain.js', from), null, 'only JavaScript');
  t.is(typescriptSibling('./missing.js', from), null, 'nothing there');
  t.is(typescriptSibling('./folder.js', from), null, 'a folder named .ts');
  t.is(typescriptSibling('./main.ts/a.js', from), null, 'a path through a file (ENOTDIR)');
  t.is(typescriptSibling('./node_modules/pkg/x.js', from), null, 'a package\'s file');
  t.is(typescriptSibling('./lib/a', from), null, 'no extension');
  t.is(typescriptSibling('./lib/a.js?v=1', from), null, 'a query');
  t.is(typescriptSibling('./hash#x.js', from), null, 'a fragment');
  t.is(typescriptSibling('./pct%41.js', from), null, 'an escape');
  t.is(typescriptSibling('./back\\slash.js', from), null, 'a backslash');
  t.is(typescriptSibling('./lib/a.ts', from), null, 'a TypeScript extension');
  t.is(typescriptSibling('@lib/a.js', from), null, 'a bare specifier (tsconfig paths, packages)');
  t.is(typescriptSibling('./lib/a.js', undefined), null, 'no parent');
  t.is(typescriptSibling('./lib/a.js', 'data:text/javascript,'), null, 'a parent that is not a file');
  t.is(typescriptSibling('./a.js', pathToFileURL(join(dir, 'cjs/main.ts')).href), null, 'a CommonJS parent');
  t.is(typescriptSibling('./main.ts', pathToFileURL(join(dir, 'esm/plain.js')).href), null, 'a JavaScript parent');
});

test('typescriptSibling leaves every resolution to tsx under --preserve-symlinks, however it is given', async (t) => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'clusterd-sibling-')));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }');
  writeFileSync(join(dir, 'main.ts'), '');
  writeFileSync(join(dir, 'a.ts'), '');
  const siblings = pathToFileURL(fileURLToPath(new URL('../../dist/worker/typescript/siblings.js', import.meta.url))).href;
  const script = `import { typescriptSibling } from ${JSON.stringify(siblings)}; console.log(JSON.stringify(typescriptSibling('./a.js', ${JSON.stringify(pathToFileURL(join(dir, 'main.ts')).href)})));`;
  const answer = async (env: Record<string, string>, execArgv: string[] = []): Promise<unknown> => {
    const { stdout } = await execa(process.execPath, [...execArgv, '--input-type=module', '-e', script], { env: { NODE_OPTIONS: '', NODE_PRESERVE_SYMLINKS: '', ...env } });
    return JSON.parse(stdout);
  };
  t.deepEqual(await answer({}), { url: pathToFileURL(join(dir, 'a.ts')).href, format: 'module' }, 'the shortcut without the flag');
  t.is(await answer({}, ['--preserve-symlinks']), null, 'a flag of node\'s');
  t.is(await answer({ NODE_OPTIONS: '--max-old-space-size=512 --preserve-symlinks' }), null, 'NODE_OPTIONS');
  t.is(await answer({ NODE_OPTIONS: '"--preserve-symlinks"' }), null, 'NODE_OPTIONS, quoted');
  t.is(await answer({ NODE_PRESERVE_SYMLINKS: '1' }), null, 'NODE_PRESERVE_SYMLINKS');
});

const swc = test.macro({
  exec(t, options: Record<string, unknown>, expected: Record<string, unknown>) {
    const { jsc, module } = swcTranspiler.swcOptions(options);
    const actual = {
      legacyDecorator: jsc!.transform!.legacyDecorator,
      decoratorMetadata: jsc!.transform!.decoratorMetadata,
      useDefineForClassFields: jsc!.transform!.useDefineForClassFields,
      importInterop: module.importInterop,
    };
    t.like(actual, expected);
  },
  title: (_title, options: Record<string, unknown>) => `swcOptions: what tsc does with ${JSON.stringify(options)}`,
});
test(swc, { experimentalDecorators: true, emitDecoratorMetadata: true }, { legacyDecorator: true, decoratorMetadata: true, importInterop: 'none' });
// Class fields: [[Define]] from ES2022 on unless said otherwise (NestJS's default target is ES2021).
test(swc, { target: 'ES2021' }, { useDefineForClassFields: false });
test(swc, { target: 'ES2022' }, { useDefineForClassFields: true });
test(swc, { target: 'ESNext', useDefineForClassFields: false }, { useDefineForClassFields: false });
// esModuleInterop: on when set, and by default under module nodenext.
test(swc, { esModuleInterop: true }, { importInterop: 'swc' });
test(swc, { module: 'NodeNext' }, { importInterop: 'swc' });

test("a file swc cannot parse is a SyntaxError that names the file, line and column first, then swc's code frame", (t) => {
  const transpile = swcTranspiler.createTranspiler(fixture('broken-ts-decorators/tsconfig.json'));
  const error = (source: string) => t.throws(() => transpile(source, '/srv/src/app.ts', 'commonjs'), { instanceOf: SyntaxError })!.message.split('\n');
  const lines = error('class A { @dec x = 1 }\nfunction dec() {}\nconst y: number = ;\n');
  t.is(lines[0], '/srv/src/app.ts:3:19: Expression expected');
  // Its stack is that place alone: no frame of clusterd's (nor a source line of it, at a crash).
  const stack = t.throws(() => transpile('const y: number = ;\n', '/srv/src/app.ts', 'commonjs'))!.stack!.split('\n');
  t.deepEqual(stack.slice(-1), ['    at /srv/src/app.ts:1:19']);
  t.false(stack.some((line) => /swc\.(ts|js)|transpiler/.test(line)), stack.join('\n'));
  t.true(lines.includes(' 3 | const y: number = ;'), lines.join('\n'));
  // Whatever RUST_BACKTRACE says, swc's Rust backtrace is left out.
  t.false(lines.some((line) => /Caused by|Stack backtrace/.test(line)), lines.join('\n'));
  // The frame's columns are a terminal's: tabs to the next multiple of 4, a CJK character two wide.
  t.is(error('let\t\tb = = 1')[0], '/srv/src/app.ts:1:10: Expression expected');
  t.is(error('const 名前 = = 1')[0], '/srv/src/app.ts:1:12: Expression expected');
  // A label on another part of the line (`^|`) does not move the column.
  t.is(error('ab\tc = = 1')[0], "/srv/src/app.ts:1:4: Expected ';', '}' or <eof>");
  // Not a parse error of swc's: thrown as it came.
  const other = new Error('Failed to load native binding');
  t.is(swcTranspiler.syntaxError(other, ''), other);
});

const brokenBoot = test.macro({
  async exec(t, backtrace: string) {
    const project = fixture('broken-ts-decorators');
    const master = launch(['start', join(project, 'src/main.ts'), '-i', '1', '--max-boot-failures', '1', '--log-format', 'json', '--name', `ts-broken-${backtrace}`], { env: { RUST_BACKTRACE: backtrace } });
    killOnTeardown(t, master.process);
    t.is(await master.exited, ExitCode.BOOT_FAILED);
    const fatal = master.lines.find((line) => line.event === 'fatal')!;
    t.is(fatal.message, `error: app failed to boot once; last: worker 1 exited with code 1 before it was ready: SyntaxError: ${join(project, 'src/broken.ts')}:3:31: Expression expected`);
    // The worker's own output still shows where, in swc's frame.
    const stderr = master.lines.filter((line) => line.stream === 'stderr').map((line) => line.message);
    t.true(stderr.includes(' 3 | export const answer: number = ;'), stderr.join('\n'));
    t.false(stderr.some((line) => line.includes('Stack backtrace')), stderr.join('\n'));
    // It begins with the user's place, and quotes no line of clusterd's nor names its frames (it
    // began with swc.ts's `return new SyntaxError(...)` and a caret, and its frames followed).
    const place = `${join(project, 'src/broken.ts')}:3:31`;
    t.is(stderr.find((line) => line.trim() !== ''), `SyntaxError: ${place}: Expression expected`, stderr.join('\n'));
    t.true(stderr.includes(`    at ${place}`), stderr.join('\n'));
    const root = fileURLToPath(new URL('../../', import.meta.url));
    t.false(stderr.some((line) => line.includes(join(root, 'src')) || line.includes(join(root, 'dist')) || line.includes('new SyntaxError')), stderr.join('\n'));
  },
  title: (_title, backtrace: string) => `a syntax error in a decorator-metadata project fails the boot with its file, line and column (RUST_BACKTRACE=${backtrace})`,
});
test(brokenBoot, '0');
test(brokenBoot, '1');

/** A temporary folder of the test's own, removed after it. */
function scratch(t: { teardown(fn: () => void): void }, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('the disk cache: a file is compiled once for every worker; a worker that finds all of them never loads the compiler', (t) => {
  const cache = scratch(t, 'clusterd-ts-cache-');
  const project = scratch(t, 'clusterd-ts-project-');
  const tsconfig = join(project, 'tsconfig.json');
  writeFileSync(tsconfig, JSON.stringify({ compilerOptions: { experimentalDecorators: true, emitDecoratorMetadata: true } }));
  const compiled: string[] = [];
  let built = 0;
  const counting: TranspilerModule = {
    createTranspiler(path) {
      built++;
      const transpile = swcTranspiler.createTranspiler(path);
      return (source, file, format) => {
        compiled.push(file);
        return transpile(source, file, format);
      };
    },
    identity: swcTranspiler.identity,
  };
  const file = join(project, 'greeter.ts');
  const source = 'export class Greeter { constructor(private readonly name: string) {} }\n';
  const first = lazyTranspiler(counting, tsconfig, cache)(source, file, 'module');
  t.true(first.includes('class Greeter'), first);
  t.is(readdirSync(cache).filter((name) => name.endsWith('.js')).length, 1);
  t.deepEqual(readdirSync(cache).filter((name) => name.endsWith('.tmp')), []);

  // Another worker, the same file: from the cache, and the compiler is never built.
  const second = lazyTranspiler(counting, tsconfig, cache);
  t.is(second(source, file, 'module'), first);
  t.is(built, 1);
  // A changed source, another module system, another path or other options are other entries.
  second(source.replace('name', 'who'), file, 'module');
  second(source, file, 'commonjs');
  second(source, join(project, 'other.ts'), 'module');
  writeFileSync(tsconfig, JSON.stringify({ compilerOptions: { experimentalDecorators: true } }));
  lazyTranspiler(counting, tsconfig, cache)(source, file, 'module');
  t.is(compiled.length, 5);
  t.is(readdirSync(cache).length, 5);
  // Without a cache, or a transpiler without an identity, every call compiles.
  const uncached = lazyTranspiler(counting, tsconfig, null);
  uncached(source, file, 'module');
  uncached(source, file, 'module');
  lazyTranspiler({ createTranspiler: counting.createTranspiler }, tsconfig, cache)(source, file, 'module');
  t.is(compiled.length, 8);
});

test('the disk cache\'s folder: this user\'s alone, or none', (t) => {
  t.is(cacheDir({ CLUSTERD_TS_CACHE: '0' }), null);
  t.is(cacheDir({}), join(tmpdir(), `clusterd-ts-${process.getuid!()}`));
  const dir = scratch(t, 'clusterd-ts-dir-');
  const chosen = join(dir, 'mine');
  t.is(cacheDir({ CLUSTERD_TS_CACHE_DIR: chosen }), chosen);
  // A relative path is not taken (a worker's cwd is the app's): the default instead.
  t.is(cacheDir({ CLUSTERD_TS_CACHE_DIR: 'relative/cache' }), join(tmpdir(), `clusterd-ts-${process.getuid!()}`));
  // A folder others may write to, or a link (made ahead of us in a shared /tmp): none.
  const open = join(dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  t.is(cacheDir({ CLUSTERD_TS_CACHE_DIR: open }), null);
  const link = join(dir, 'link');
  symlinkSync(chosen, link);
  t.is(cacheDir({ CLUSTERD_TS_CACHE_DIR: link }), null);
  const file = join(dir, 'file');
  writeFileSync(file, '');
  t.is(cacheDir({ CLUSTERD_TS_CACHE_DIR: file }), null);
});

test('the disk cache is pruned of entries neither read nor written for 30 days; nothing else in the folder is touched', (t) => {
  const dir = scratch(t, 'clusterd-ts-prune-');
  const now = Date.now();
  const at = (name: string, ageMs: number, atimeAgeMs = ageMs): void => {
    writeFileSync(join(dir, name), '');
    utimesSync(join(dir, name), (now - atimeAgeMs) / 1000, (now - ageMs) / 1000);
  };
  at('fresh.js', 1000);
  at('old.js', CACHE_MAX_AGE_MS + 1000);
  at('old-but-read.js', CACHE_MAX_AGE_MS + 1000, 1000);
  at('left-over.js.123-0.tmp', CACHE_MAX_AGE_MS + 1000);
  at('notes.txt', CACHE_MAX_AGE_MS + 1000);
  t.is(pruneCache(dir, now), 2);
  t.deepEqual(readdirSync(dir).sort(), ['fresh.js', 'notes.txt', 'old-but-read.js']);
  t.is(pruneCache(null, now), 0);
  t.is(pruneCache(join(dir, 'missing'), now), 0);
});
