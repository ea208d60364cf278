// Issue 13, points 1 and 4: a TypeScript entry runs with the tsconfig.json of its own project, found
// from the entry upwards (following `extends`), whatever directory `clusterd start` runs in; a
// project that cannot run as it says is refused before any worker starts, in one line, exit 2.
import test from 'ava';
import { execa } from 'execa';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { devNull, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ClusterdError } from '../../src/errors.js';
import { ExitCode } from '../../src/exit-codes.js';
import { resolveEntry } from '../../src/master/entry.js';
import { checkTranspiler, findTsconfig, TSCONFIG_ENV, tsxHooksInThread, typescriptLoader } from '../../src/master/typescript.js';
import { CLI, fixture, get, killOnTeardown, startCluster } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';

/** A project in a fresh temporary directory: files by relative path. */
function project(t: { teardown(fn: () => void): void }, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-ts-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

const APP = "import http from 'node:http';\nhttp.createServer((_q, s) => s.end('ok')).listen(0, '127.0.0.1');\n";
const METADATA = { experimentalDecorators: true, emitDecoratorMetadata: true };

test('the nearest tsconfig.json from the entry up is the project config, and only tsx loads a project without decorator metadata', (t) => {
  const dir = project(t, { 'tsconfig.json': '{}', 'src/app/main.ts': APP });
  const loader = typescriptLoader(join(dir, 'src/app/main.ts'), { env: {}, cwd: tmpdir() });
  t.is(loader.tsconfigPath, join(dir, 'tsconfig.json'));
  t.false(loader.decoratorMetadata);
  t.deepEqual(loader.env, { [TSCONFIG_ENV]: join(dir, 'tsconfig.json') });
  t.deepEqual(loader.execArgv, ['--import', import.meta.resolve('tsx')]);
  t.is(findTsconfig(join(dir, 'src')), join(dir, 'tsconfig.json'));
});

test('emitDecoratorMetadata, here through `extends`, adds the decorator-metadata layer after tsx', (t) => {
  const dir = project(t, {
    'tsconfig.json': '{ "extends": "./base.json" }',
    'base.json': JSON.stringify({ compilerOptions: METADATA }),
    'main.ts': APP,
  });
  const loader = typescriptLoader(join(dir, 'main.ts'), { env: {} });
  t.true(loader.decoratorMetadata);
  t.is(loader.execArgv.length, 4);
  t.is(loader.execArgv[1], import.meta.resolve('tsx'));
  t.regex(loader.execArgv[3]!, /\/worker\/typescript\/metadata\.js$/);
});

test('emitDecoratorMetadata from a package extended by its name (a workspace\'s shared tsconfig) adds the layer too', (t) => {
  const dir = project(t, {
    'tsconfig.json': '{ "extends": "@org/tsconfig/node" }',
    'node_modules/@org/tsconfig/package.json': '{ "name": "@org/tsconfig", "version": "1.0.0" }',
    // Comments and trailing commas, as tsc allows.
    'node_modules/@org/tsconfig/node.json': `{ /* shared */ "compilerOptions": ${JSON.stringify(METADATA).replace(/}$/, ',}')}, }`,
    'main.ts': APP,
  });
  t.true(typescriptLoader(join(dir, 'main.ts'), { env: {} }).decoratorMetadata);
});

test('an entry with no tsconfig.json above it gets an empty one, never the current directory\'s', (t) => {
  // The root of the temporary directory's filesystem may hold a tsconfig.json of its own: only a
  // directory known to have none above it proves the point, so look first.
  const dir = project(t, { 'main.ts': APP });
  t.is(findTsconfig(dir), null, 'a tsconfig.json above the temporary directory');
  const loader = typescriptLoader(join(dir, 'main.ts'), { env: {}, cwd: fixture('ts-paths') });
  t.is(loader.tsconfigPath, null);
  t.deepEqual(loader.env, { [TSCONFIG_ENV]: devNull });
});

test('a tsconfig.json that starts with a byte-order mark (as Visual Studio saves it) is read as tsc reads it', (t) => {
  const dir = project(t, { 'tsconfig.json': `\uFEFF${JSON.stringify({ compilerOptions: METADATA })}`, 'main.ts': APP });
  t.true(typescriptLoader(join(dir, 'main.ts'), { env: {} }).decoratorMetadata);
});

test(`${TSCONFIG_ENV} set by the user names the project config, relative to the current directory`, (t) => {
  const dir = project(t, { 'configs/ts.json': JSON.stringify({ compilerOptions: METADATA }), 'tsconfig.json': '{}', 'main.ts': APP });
  const loader = typescriptLoader(join(dir, 'main.ts'), { env: { [TSCONFIG_ENV]: 'configs/ts.json' }, cwd: dir });
  t.is(loader.tsconfigPath, join(dir, 'configs/ts.json'));
  t.true(loader.decoratorMetadata);
});

test(`a relative ${TSCONFIG_ENV} in the workers' environment is read from the workers' directory (--cwd), not the one clusterd started in`, (t) => {
  const dir = project(t, { 'configs/ts.json': JSON.stringify({ compilerOptions: METADATA }), 'main.ts': APP });
  t.not(process.cwd(), dir);
  const entry = resolveEntry('main.ts', [], dir, { [TSCONFIG_ENV]: 'configs/ts.json' });
  t.is(entry.env[TSCONFIG_ENV], join(dir, 'configs/ts.json'));
});

// Refusals, checked on the function and then through the real CLI: exit 2, one `clusterd:` line
// that says why and what to do, nothing started.
const refusals: Array<{ title: string; files: Record<string, string>; env?: Record<string, string>; mentions: string[] }> = [
  {
    title: 'a tsconfig.json that is not JSON',
    files: { 'tsconfig.json': '{ "compilerOptions": { "strict": true, } oops }', 'main.ts': APP },
    mentions: ['tsconfig.json is not valid JSON', 'tsc --showConfig'],
  },
  {
    title: 'a tsconfig.json that extends a file that does not exist',
    files: { 'tsconfig.json': '{ "extends": "./missing.json" }', 'main.ts': APP },
    mentions: ["File './missing.json' not found", 'fix its "extends"'],
  },
  {
    title: 'a tsconfig.json that extends, by a path, a file that is not JSON (get-tsconfig would drop what it cannot read)',
    files: { 'tsconfig.json': '{ "extends": "./configs/base" }', 'configs/base.json': '{ "extends": "../shared.json" }', 'shared.json': '{ "compilerOptions": { "experimentalDecorators": true oops } }', 'main.ts': APP },
    mentions: ['shared.json (extended by', 'configs/base.json) is not valid JSON', 'tsc --showConfig'],
  },
  {
    title: "a tsconfig.json that extends a workspace package's tsconfig.json, by the package's name, that is not JSON",
    files: {
      'tsconfig.json': '{ "extends": "@org/tsconfig" }',
      'node_modules/@org/tsconfig/package.json': '{ "name": "@org/tsconfig", "version": "1.0.0" }',
      'node_modules/@org/tsconfig/tsconfig.json': '{ "compilerOptions": { "experimentalDecorators": true oops } }',
      'main.ts': APP,
    },
    mentions: ['node_modules/@org/tsconfig/tsconfig.json (extended by', 'is not valid JSON'],
  },
  {
    title: "a tsconfig.json that extends the file a package's `tsconfig` field names, and that file is not JSON",
    files: {
      'tsconfig.json': '{ "extends": "shared-config" }',
      'node_modules/shared-config/package.json': '{ "name": "shared-config", "tsconfig": "./configs/node.json" }',
      'node_modules/shared-config/configs/node.json': '{ "compilerOptions": { "target": "es2022", } } }',
      'main.ts': APP,
    },
    mentions: ['node_modules/shared-config/configs/node.json (extended by', 'is not valid JSON'],
  },
  {
    title: 'a tsconfig.json that extends a file in a package, named without `.json` (beside a .js of that name), that is not JSON',
    files: {
      'tsconfig.json': '{ "extends": "@org/tsconfig/base" }',
      'node_modules/@org/tsconfig/package.json': '{ "name": "@org/tsconfig", "version": "1.0.0" }',
      'node_modules/@org/tsconfig/base.js': 'module.exports = {};\n',
      'node_modules/@org/tsconfig/base.json': '[1, 2',
      'main.ts': APP,
    },
    mentions: ['node_modules/@org/tsconfig/base.json (extended by', 'is not valid JSON'],
  },
  {
    title: 'emitDecoratorMetadata without experimentalDecorators',
    files: { 'tsconfig.json': '{ "compilerOptions": { "emitDecoratorMetadata": true } }', 'main.ts': APP },
    mentions: ['TS5052', '"experimentalDecorators": true'],
  },
  {
    title: `${TSCONFIG_ENV} naming a file that does not exist`,
    files: { 'tsconfig.json': '{}', 'main.ts': APP },
    env: { [TSCONFIG_ENV]: 'nowhere/tsconfig.json' },
    mentions: [TSCONFIG_ENV, 'nowhere/tsconfig.json', 'does not exist'],
  },
  {
    title: 'CLUSTERD_TS_CACHE set to something other than 0 or 1 (a project with decorator metadata)',
    files: { 'tsconfig.json': JSON.stringify({ compilerOptions: METADATA }), 'main.ts': APP },
    env: { CLUSTERD_TS_CACHE: 'off' },
    mentions: ['CLUSTERD_TS_CACHE is `off`', 'set it to 0'],
  },
  {
    title: 'CLUSTERD_TS_CACHE_DIR relative',
    files: { 'tsconfig.json': JSON.stringify({ compilerOptions: METADATA }), 'main.ts': APP },
    env: { CLUSTERD_TS_CACHE_DIR: 'cache' },
    mentions: ['CLUSTERD_TS_CACHE_DIR must be an absolute path', '`cache`'],
  },
  {
    title: 'CLUSTERD_TS_CACHE_DIR naming a file, not a folder',
    files: { 'tsconfig.json': JSON.stringify({ compilerOptions: METADATA }), 'main.ts': APP },
    env: { CLUSTERD_TS_CACHE_DIR: devNull },
    mentions: [`CLUSTERD_TS_CACHE_DIR=${devNull} cannot be used`, 'no other user may write to'],
  },
];

for (const { title, files, env = {}, mentions } of refusals) {
  test(`refused: ${title}`, async (t) => {
    const dir = project(t, files);
    const error = t.throws(() => typescriptLoader(join(dir, 'main.ts'), { env, cwd: dir }), { instanceOf: ClusterdError })!;
    t.is((error as ClusterdError).code, 'ERR_CLUSTERD_TYPESCRIPT');
    t.is((error as ClusterdError).exitCode, ExitCode.USAGE);

    const result = await execa(process.execPath, [CLI, 'start', join(dir, 'main.ts'), '-i', '1'], {
      cwd: dir,
      env,
      reject: false,
      timeout: 30_000,
      stdin: 'ignore',
    });
    t.is(result.exitCode, ExitCode.USAGE, String(result.stderr));
    const lines = String(result.stderr).split('\n').filter(Boolean);
    t.is(lines.length, 1, String(result.stderr));
    t.true(lines[0]!.startsWith('clusterd: '), lines[0]);
    for (const words of mentions) t.true(lines[0]!.includes(words), `${JSON.stringify(words)} not in: ${lines[0]}`);
    t.is(String(result.stdout), '', 'nothing started');
    if (Object.keys(env).length === 0) return;

    // The same setting in the config file's env, which the workers would get: refused alike.
    writeFileSync(join(dir, 'clusterd.config.json'), JSON.stringify({ entry: 'main.ts', instances: 1, env }));
    const configured = await execa(process.execPath, [CLI, 'start'], { cwd: dir, reject: false, timeout: 30_000, stdin: 'ignore' });
    t.is(configured.exitCode, ExitCode.USAGE, String(configured.stderr));
    const line = String(configured.stderr).trim();
    t.false(line.includes('\n'), line);
    for (const words of mentions) t.true(line.includes(words), `${JSON.stringify(words)} not in: ${line}`);
  });
}

test('a tsconfig.json that is not JSON is placed by line and column, counted in the file as written (comments, CRLF), once, on one line', (t) => {
  const refusal = (text: string): string => {
    const dir = project(t, { 'tsconfig.json': text, 'main.ts': APP });
    return t.throws(() => typescriptLoader(join(dir, 'main.ts'), { env: {}, cwd: dir }), { instanceOf: ClusterdError })!.message;
  };
  const missingComma = ['{', '  // The options.', '  "compilerOptions": { /* strict',  '  mode */ "strict": true', '    "target": "es2022" }', '}'];
  for (const newline of ['\n', '\r\n']) {
    const message = refusal(missingComma.join(newline));
    t.regex(message, /at position \d+ \(line 5 column 5\)\): fix it/, JSON.stringify(newline));
    t.is(message.match(/\(line/g)?.length, 1, message);
  }
  // A complaint that quotes the file: its newlines were where the line was cut.
  const quoted = refusal('{"compilerOptions": {},\n "extends": }');
  t.false(quoted.includes('\n'), quoted);
  t.true(quoted.includes('is not valid JSON): fix it'), quoted);
});

test('refused: the decorator-metadata transpiler is not installed', (t) => {
  const dir = project(t, { 'tsconfig.json': JSON.stringify({ compilerOptions: METADATA }) });
  const error = t.throws(() => checkTranspiler(join(dir, 'tsconfig.json'), 'clusterd-no-such-transpiler'), { instanceOf: ClusterdError })!;
  t.is((error as ClusterdError).code, 'ERR_CLUSTERD_TYPESCRIPT');
  t.regex(error.message, /needs clusterd-no-such-transpiler, and it is not installed: reinstall clusterd's dependencies on this machine \(npm install\)/);
  t.false(error.message.includes('\n'));
});

test('refused: the decorator-metadata transpiler is installed but does not load (a native build missing)', (t) => {
  const dir = project(t, { 'tsconfig.json': JSON.stringify({ compilerOptions: METADATA }) });
  const broken = pathToFileURL(fixture('ts-broken-transpiler/index.mjs')).href;
  const error = t.throws(() => checkTranspiler(join(dir, 'tsconfig.json'), broken), { instanceOf: ClusterdError })!;
  t.regex(error.message, /and it does not load here \(Error: Failed to load native binding\): reinstall/);
  t.false(error.message.includes('\n'));
});

test('the decorator-metadata transpiler clusterd ships loads here', (t) => {
  const dir = project(t, { 'tsconfig.json': JSON.stringify({ compilerOptions: METADATA }) });
  t.notThrows(() => checkTranspiler(join(dir, 'tsconfig.json')));
});

test('a tsconfig `paths` app, its paths in the file tsconfig.json extends, serves when started from another directory with a tsconfig.json of its own', async (t) => {
  // The current directory's tsconfig.json maps @lib/* nowhere: read instead of the entry's, the
  // app could not boot (tsx's own fallback when it is not told which tsconfig.json to use).
  const elsewhere = project(t, { 'tsconfig.json': JSON.stringify({ compilerOptions: { baseUrl: '.', paths: { '@lib/*': ['nowhere/*'] } } }) });
  const cluster = await startCluster(fixture('ts-paths/app/server.ts'), { instances: 2, cwd: elsewhere });
  killOnTeardown(t, cluster.process);
  const workers = new Set<string>();
  for (let asked = 0; asked < 50 && workers.size < 2; asked++) {
    const response = await get(cluster.port);
    t.is(response.status, 200);
    const answer = JSON.parse(response.body) as { answer: string; worker: string };
    t.is(answer.answer, 'hello app through paths');
    workers.add(answer.worker);
  }
  t.deepEqual([...workers].sort(), ['1', '2']);
  t.is(await cluster.stop(), 0);
});

test('a .cts entry importing .ts files (an enum, by a relative path and through `paths`) serves on every worker, with the require() of a CommonJS entry', async (t) => {
  // Where tsx's hooks run on Node's loader thread (Node 20), tsx compiled the .cts there and Node ran
  // it with a require() that took ./lib/color.ts through the same hooks, uncompiled: every worker
  // failed its boot with "SyntaxError: Unexpected token 'export'".
  const cluster = await startCluster(fixture('ts-cts/src/main.cts'), { instances: 2, cwd: tmpdir() });
  killOnTeardown(t, cluster.process);
  const workers = new Set<string>();
  for (let asked = 0; asked < 50 && workers.size < 2; asked++) {
    const response = await get(cluster.port);
    t.is(response.status, 200, response.body);
    const answer = JSON.parse(response.body) as { color: string; greeting: string; requireCache: string; worker: string };
    t.is(answer.color, 'green');
    t.is(answer.greeting, 'hello cts');
    t.is(answer.requireCache, 'object');
    workers.add(answer.worker);
  }
  t.deepEqual([...workers].sort(), ['1', '2']);
  t.is(await cluster.stop(), 0);
});

test('the CommonJS entry hook goes only where tsx\'s hooks run on the loader thread, to `.cts` entries', (t) => {
  t.false(tsxHooksInThread('20.20.2'));
  t.false(tsxHooksInThread('22.22.2'));
  t.true(tsxHooksInThread('22.22.3'));
  t.false(tsxHooksInThread('23.11.0'));
  t.false(tsxHooksInThread('24.11.0'));
  t.true(tsxHooksInThread('24.11.1'));
  t.true(tsxHooksInThread('24.22.3'));
  t.false(tsxHooksInThread('25.0.9'));
  t.true(tsxHooksInThread('25.1.0'));
  t.true(tsxHooksInThread('26.0.0'));
  const hooked = (entry: string): boolean => typescriptLoader(fixture(entry), { env: {} }).execArgv.some((arg) => arg.endsWith('/cjs-entry.js'));
  t.is(hooked('ts-cts/src/main.cts'), !tsxHooksInThread());
  t.false(hooked('ts-paths/app/server.ts'), 'an ES module entry');
  t.false(hooked('ts-decorators-cjs/src/main.ts'), 'a .ts entry of a CommonJS package, which tsx gives to the CommonJS loader itself');
});

test('the default cache folder taken by someone else: the cluster starts and says once that the layer\'s cache is off', async (t) => {
  const dir = project(t, { 'tsconfig.json': JSON.stringify({ compilerOptions: { ...METADATA, esModuleInterop: true } }), 'main.ts': APP });
  // The folder another user would have made first in a shared /tmp: not this user's alone (here
  // anyone may write to it), so nothing in it may be run.
  const tmp = mkdtempSync(join(tmpdir(), 'clusterd-tmp-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const squatted = join(tmp, `clusterd-ts-${process.getuid!()}`);
  mkdirSync(squatted);
  chmodSync(squatted, 0o777);
  t.is(typescriptLoader(join(dir, 'main.ts'), { env: {}, cwd: dir }).cacheOff, null, 'the usual folder is usable');
  // The folder is found from the environment given, as a process started with it would find it.
  t.regex(typescriptLoader(join(dir, 'main.ts'), { env: { TMPDIR: `${tmp}/` }, cwd: dir }).cacheOff ?? '', new RegExp(`${squatted} is not a folder of this user's alone`));

  const cluster = await startCluster(join(dir, 'main.ts'), { instances: 1, cwd: dir, env: { TMPDIR: tmp } });
  killOnTeardown(t, cluster.process);
  t.is((await get(cluster.port)).body, 'ok');
  const said = cluster.lines.filter((line) => line.event === 'ts-cache-off');
  t.is(said.length, 1);
  t.is(said[0]!.level, 'warn');
  for (const words of [squatted, 'CLUSTERD_TS_CACHE_DIR', 'CLUSTERD_TS_CACHE=0']) t.true(said[0]!.message.includes(words), said[0]!.message);
  t.deepEqual(readdirSync(squatted), [], 'nothing written to it');
  t.is(await cluster.stop(), 0);

  // TMPDIR from the configuration file's env, which the workers get: the master checks that folder too.
  writeFileSync(join(dir, 'clusterd.config.json'), JSON.stringify({ env: { TMPDIR: tmp } }));
  const configured = await startCluster(join(dir, 'main.ts'), { instances: 1, cwd: dir });
  killOnTeardown(t, configured.process);
  t.is((await get(configured.port)).body, 'ok');
  const saidAgain = configured.lines.filter((line) => line.event === 'ts-cache-off');
  t.is(saidAgain.length, 1);
  t.true(saidAgain[0]!.message.includes(squatted), saidAgain[0]!.message);
  t.deepEqual(readdirSync(squatted), [], 'nothing written to it');
  t.is(await configured.stop(), 0);
});

test('reload, restart and scale up re-check tsconfig.json as start does: one that no longer parses, or whose `extends` is gone, is refused in start\'s line, exit 3, and the workers serve on with their metadata', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-ts-reload-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(fixture('ts-decorators-cjs'), dir, { recursive: true });
  const tsconfig = join(dir, 'tsconfig.json');
  const good = readFileSync(tsconfig, 'utf8');
  const ctl = control(t);
  const cluster = await startCluster(join(dir, 'src/main.ts'), { instances: 2, cwd: dir, flags: ['--name', 'ts-recheck'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const answers = async (): Promise<void> => {
    for (let asked = 0; asked < 6; asked++) {
      const response = await get(cluster.port);
      t.is(response.status, 200, response.body);
      t.is((JSON.parse(response.body) as { answer: string }).answer, 'hello cjs, 2026');
    }
  };
  await answers();

  const broken = {
    // The audit's: a key without its quotes. Read leniently, the file was {}: no decorator metadata, every request 500.
    'not valid JSON': good.replace('"compilerOptions"', 'compilerOptions'),
    'an `extends` whose file is missing': good.replace('{', '{ "extends": "./tsconfig.base.json",'),
  };
  for (const [what, text] of Object.entries(broken)) {
    writeFileSync(tsconfig, text);
    // What `start` says of this file (nothing starts): the reload says the same.
    const started = await execa(process.execPath, [CLI, 'start', join(dir, 'src/main.ts'), '-i', '1', '--name', 'ts-recheck-start'], { cwd: dir, env: ctl.env, reject: false, timeout: 30_000, stdin: 'ignore' });
    t.is(started.exitCode, ExitCode.USAGE, String(started.stderr));
    const line = String(started.stderr).trim();
    t.false(line.includes('\n'), line);
    t.true(line.startsWith(`clusterd: ${tsconfig}`), line);
    for (const args of [['reload', 'ts-recheck'], ['restart', 'ts-recheck', '1'], ['scale', 'ts-recheck', '+1']]) {
      const result = await ctl.run(args);
      t.is(result.exitCode, ExitCode.BOOT_FAILED, `${what}: ${args.join(' ')}: ${String(result.stderr)}`);
      t.deepEqual(String(result.stderr).trim().split('\n'), [line], `${what}: ${args.join(' ')}`);
    }
    const workers = await ctl.workers('ts-recheck');
    t.deepEqual(workers.map((worker) => [worker.id, worker.generation, worker.state, worker.pid]), [
      [1, 1, 'ready', cluster.pids[0]],
      [2, 1, 'ready', cluster.pids[1]],
    ], what);
    await answers();
  }

  writeFileSync(tsconfig, good);
  const reload = await ctl.run(['reload', 'ts-recheck']);
  t.is(reload.exitCode, 0, String(reload.stderr));
  t.deepEqual((await ctl.workers('ts-recheck')).map((worker) => worker.generation), [2, 2]);
  await answers();
});
