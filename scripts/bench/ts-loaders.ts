// `npm run bench:ts-loaders`: what each way of running a TypeScript entry that needs decorator
// metadata costs one worker: the time from spawn to its server listening, and its RSS once it has
// answered one request (which also says whether the injection worked: 200, or 500 without the
// metadata). Same apps for every candidate, runs interleaved, medians. Prints a Markdown table.
//   --runs N        runs of each candidate on each app (default 7)
//   --modules N     services in the generated large apps (default 200)
//   --no-install    do not install @swc-node/register into .bench-cache/ (it is then left out)
// Needs `npm run build` first (the layer runs from dist/). Runs with the Node that runs it.
import { fork, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { median } from './stats.js';

const root = path.resolve(import.meta.dirname, '..', '..');
const cache = path.join(root, '.bench-cache');

interface App {
  label: string;
  entry: string;
  tsconfig: string;
  format: 'commonjs' | 'module';
  /** The entry as tsc builds it ahead of time, where plain node can run that (no tsconfig `paths`). */
  built?: string;
}

interface Candidate {
  label: string;
  execArgv: string[];
  env: (app: App) => Record<string, string>;
  /** The directory the app runs in (default: this one). */
  cwd?: string;
  /** What it runs instead of the app's TypeScript entry; null: not applicable to this app. */
  entry?: (app: App) => string | null;
}

interface Run {
  listenMs: number | null;
  rssMb: number | null;
  status: number | string;
}

const tsx = import.meta.resolve('tsx');
const layerEnv = (app: App): Record<string, string> => ({ TSX_TSCONFIG_PATH: app.tsconfig });

function candidates(install: boolean): Candidate[] {
  const list: Candidate[] = [
    {
      // The floor: what loading the same modules costs without any loader. tsx alone is not that
      // floor: esbuild drops the imports used only as types, which metadata needs, so with 200
      // services it loads 3 of the 202 files.
      label: 'node, built by tsc ahead of time',
      execArgv: [],
      env: () => ({}),
      entry: (app) => app.built ?? null,
    },
    { label: 'tsx (esbuild): no metadata', execArgv: ['--import', tsx], env: layerEnv },
    {
      // Its disk cache (src/worker/typescript/transpiler.ts) is warm from the first run on, as tsx's is.
      label: 'tsx + layer, @swc/core (clusterd)',
      execArgv: ['--import', tsx, '--import', new URL('../../dist/worker/typescript/metadata.js', import.meta.url).href],
      env: layerEnv,
    },
    {
      // Every file compiled, as by the first worker to start after a change (and by every worker before the cache).
      label: 'the same, its disk cache off',
      execArgv: ['--import', tsx, '--import', new URL('../../dist/worker/typescript/metadata.js', import.meta.url).href],
      env: (app) => ({ ...layerEnv(app), CLUSTERD_TS_CACHE: '0' }),
    },
    {
      label: 'tsx + layer, typescript transpileModule',
      execArgv: ['--import', tsx, '--import', new URL('./ts-loaders/typescript-layer.mjs', import.meta.url).href],
      env: layerEnv,
    },
  ];
  const swcNode = prepareSwcNode(install);
  if ('url' in swcNode) {
    list.push({
      label: `@swc-node/register ${swcNode.version}`,
      execArgv: ['--import', swcNode.url],
      env: (app) => ({ SWC_NODE_PROJECT: app.tsconfig }),
      // Its esm-register module registers '@swc-node/register/esm' relative to the current directory.
      cwd: cache,
    });
  } else {
    console.error(`bench:ts-loaders: @swc-node/register left out: ${swcNode.note}`);
  }
  return list;
}

/** @swc-node/register from .bench-cache/, installed there (with the @swc/core it needs) once. */
function prepareSwcNode(install: boolean): { url: string; version: string } | { note: string } {
  const dir = path.join(cache, 'node_modules', '@swc-node', 'register');
  if (!fs.existsSync(path.join(dir, 'package.json'))) {
    if (!install) return { note: 'not in .bench-cache/ and --no-install was given' };
    console.error('bench:ts-loaders: installing @swc-node/register into .bench-cache/ ...');
    try {
      execFileSync('npm', ['install', '--prefix', cache, '@swc-node/register@1', '@swc/core@1', 'typescript@5', '--no-audit', '--no-fund', '--loglevel=error'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    } catch (error) {
      return { note: `npm install failed: ${String(error).split('\n')[0]}` };
    }
  }
  const { version } = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string };
  return { url: new URL(`file://${path.join(dir, 'esm', 'esm-register.mjs')}`).href, version };
}

/** Generated NestJS-shaped apps: `count` injectable services, each taking the two before it. */
function generateApps(dir: string, count: number): App[] {
  const apps: App[] = [];
  for (const format of ['commonjs', 'module'] as const) {
    const base = path.join(dir, format);
    const ext = format === 'module' ? '.js' : '';
    fs.mkdirSync(path.join(base, 'src'), { recursive: true });
    fs.writeFileSync(path.join(base, 'package.json'), JSON.stringify({ private: true, type: format }));
    const tsconfig = {
      compilerOptions: {
        target: 'ES2021',
        module: format === 'module' ? 'NodeNext' : 'commonjs',
        strict: true,
        esModuleInterop: true,
        experimentalDecorators: true,
        emitDecoratorMetadata: true,
      },
    };
    fs.writeFileSync(path.join(base, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
    fs.copyFileSync(path.join(root, 'test', 'fixtures', 'ts-decorators-cjs', 'src', 'di.ts'), path.join(base, 'src', 'di.ts'));
    for (let i = 0; i < count; i++) {
      const deps = [i - 1, i - 2].filter((d) => d >= 0);
      fs.writeFileSync(
        path.join(base, 'src', `service-${i}.ts`),
        [
          `import { Injectable } from './di${ext}';`,
          ...deps.map((d) => `import { Service${d} } from './service-${d}${ext}';`),
          `export enum Level${i} { Low = 'low', High = 'high' }`,
          `export interface Options${i} { level: Level${i}; limit?: number; tags: readonly string[] }`,
          '@Injectable()',
          `export class Service${i} {`,
          '  private readonly seen = new Map<string, number>();',
          `  constructor(${deps.map((d) => `private readonly s${d}: Service${d}`).join(', ')}) {}`,
          `  ready(): boolean { return ${deps.map((d) => `this.s${d} !== undefined`).join(' && ') || 'true'}; }`,
          `  describe(options: Options${i}): string {`,
          '    const count = (this.seen.get(options.level) ?? 0) + 1;',
          '    this.seen.set(options.level, count);',
          `    return \`service ${i} \${options.level} \${count} \${options.tags.join(',')}\`.slice(0, options.limit ?? 80);`,
          '  }',
          '}',
          '',
        ].join('\n'),
      );
    }
    fs.writeFileSync(
      path.join(base, 'src', 'main.ts'),
      [
        "import http from 'node:http';",
        `import { resolve } from './di${ext}';`,
        `import { Service${count - 1} } from './service-${count - 1}${ext}';`,
        'const instances = new Map();',
        `resolve(Service${count - 1}, instances);`,
        `const ok = instances.size === ${count} && [...instances.values()].every((s) => (s as { ready(): boolean }).ready());`,
        "http.createServer((_q, s) => { s.statusCode = ok ? 200 : 500; s.end(String(instances.size)); }).listen(0, '127.0.0.1');",
        '',
      ].join('\n'),
    );
    const tsconfigPath = path.join(base, 'tsconfig.json');
    apps.push({ label: `${count} services, ${format === 'module' ? 'ESM' : 'CommonJS'}`, entry: path.join(base, 'src', 'main.ts'), tsconfig: tsconfigPath, format, built: build(base, tsconfigPath) });
  }
  return apps;
}

/** tsc's build of a generated app into `base`/built, as a project would deploy it; its entry. */
function build(base: string, tsconfigPath: string): string {
  const out = path.join(base, 'built');
  const tsc = path.join(path.dirname(fileURLToPath(import.meta.resolve('typescript'))), '..', 'bin', 'tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', tsconfigPath, '--outDir', out, '--rootDir', path.join(base, 'src')], { stdio: 'ignore' });
  } catch {
    // Type errors (no @types/node here) do not stop tsc from emitting; the check below does.
  }
  fs.copyFileSync(path.join(base, 'package.json'), path.join(out, 'package.json'));
  const entry = path.join(out, 'main.js');
  if (!fs.existsSync(entry)) throw new Error(`bench:ts-loaders: tsc did not build ${entry}`);
  return entry;
}

/** One run: spawn, wait for the listen report, one request, the RSS after it, kill. */
async function measure(candidate: Candidate, app: App): Promise<Run | null> {
  const entry = candidate.entry ? candidate.entry(app) : app.entry;
  if (entry === null) return null;
  const started = performance.now();
  const child = fork(entry, [], {
    execArgv: ['--import', new URL('./ts-loaders/probe.mjs', import.meta.url).href, ...candidate.execArgv],
    env: { ...process.env, ...candidate.env(app) },
    cwd: candidate.cwd,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit');
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    const first = await Promise.race([
      new Promise<{ port: number }>((resolve) => child.once('message', (message: { port: number }) => resolve(message))),
      exited.then(() => null),
    ]);
    if (!first) return { listenMs: null, rssMb: null, status: `exited: ${lastLine(stderr)}` };
    const listenMs = performance.now() - started;
    const status = await request(first.port);
    const rss = once(child, 'message');
    child.send('rss');
    const [{ rss: bytes }] = (await rss) as [{ rss: number }];
    return { listenMs, rssMb: bytes / 1024 / 1024, status };
  } finally {
    clearTimeout(timer);
    child.kill('SIGKILL');
    await exited;
  }
}

function request(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent: false }, (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((line) => line.trim()).filter(Boolean);
  return (lines.find((line) => /^\w*Error\b/.test(line)) ?? lines.at(-1) ?? 'no output').slice(0, 120);
}

async function main(argv: string[]): Promise<number> {
  let runs = 7;
  let modules = 200;
  let install = true;
  for (let i = 0; i < argv.length; i++) {
    const value = Number(argv[i + 1]);
    if (argv[i] === '--runs' && Number.isInteger(value) && value > 0) {
      runs = value;
      i++;
    } else if (argv[i] === '--modules' && Number.isInteger(value) && value > 1) {
      modules = value;
      i++;
    } else if (argv[i] === '--no-install') install = false;
    else {
      console.error(`bench:ts-loaders: unknown argument ${argv[i]} (usage: npm run bench:ts-loaders -- [--runs N] [--modules N] [--no-install])`);
      return 2;
    }
  }
  if (!fs.existsSync(path.join(root, 'dist', 'worker', 'typescript', 'metadata.js'))) {
    console.error('bench:ts-loaders: run `npm run build` first');
    return 2;
  }
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'clusterd-ts-loaders-'));
  try {
    const small = (format: 'commonjs' | 'module'): App => {
      const dir = path.join(root, 'test', 'fixtures', format === 'module' ? 'ts-decorators-esm' : 'ts-decorators-cjs');
      return { label: `test fixture, ${format === 'module' ? 'ESM' : 'CommonJS'} (5 files)`, entry: path.join(dir, 'src', 'main.ts'), tsconfig: path.join(dir, 'tsconfig.json'), format };
    };
    const apps = [small('commonjs'), small('module'), ...generateApps(scratch, modules)];
    const list = candidates(install);
    const results = new Map<string, Run[]>();
    const key = (candidate: Candidate, app: App): string => `${candidate.label}\0${app.label}`;
    for (let run = 0; run < runs; run++) {
      for (const app of apps) {
        for (const candidate of list) {
          const result = await measure(candidate, app);
          if (result !== null) results.set(key(candidate, app), [...(results.get(key(candidate, app)) ?? []), result]);
        }
      }
      console.error(`bench:ts-loaders: run ${run + 1}/${runs} done`);
    }

    console.log(`Node ${process.version}, ${os.cpus().length} CPUs, ${runs} runs each, medians (min-max); RSS once the first request is answered.\n`);
    console.log('| app | loader | requests | time to listen, ms | RSS, MB |');
    console.log('|---|---|---|---|---|');
    for (const app of apps) {
      for (const candidate of list) {
        const rows = results.get(key(candidate, app));
        if (rows === undefined) continue;
        const statuses = [...new Set(rows.map((row) => String(row.status)))].join(', ');
        const listen = rows.map((row) => row.listenMs).filter((ms): ms is number => ms !== null);
        const rss = rows.map((row) => row.rssMb).filter((mb): mb is number => mb !== null);
        console.log(`| ${app.label} | ${candidate.label} | ${statuses} | ${range(listen, 0)} | ${range(rss, 1)} |`);
      }
    }
    return 0;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

function range(values: number[], digits: number): string {
  if (values.length === 0) return '-';
  return `${median(values)!.toFixed(digits)} (${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)})`;
}

process.exitCode = await main(process.argv.slice(2));
