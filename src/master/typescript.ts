// How a TypeScript entry runs: the tsconfig.json of its project, found from the entry as tsc and
// editors find it (not from the directory `clusterd start` runs in), and the loader its workers
// need. Whatever clusterd cannot run as the project says is refused here, before any worker starts,
// in one line: a cluster that reports ready and then answers 500 to every request is worse.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { devNull } from 'node:os';
import { dirname, extname, isAbsolute, join, relative, resolve } from 'node:path';
import { parseTsconfig, type TsConfigJson } from 'get-tsconfig';
import stripJsonComments from 'strip-json-comments';
import { TypeScriptError, oneLine } from '../errors.js';
import { CACHE_DIR_ENV, CACHE_ENV, cacheDir, defaultCacheDir, pruneCache } from '../worker/typescript/transpiler.js';

/** The variable through which tsx (and clusterd's own layer) reads the project's tsconfig.json. */
export const TSCONFIG_ENV = 'TSX_TSCONFIG_PATH';

/** The transpiler of the decorator-metadata layer (src/worker/typescript/swc.ts). */
const METADATA_TRANSPILER = '@swc/core';

export interface TypeScriptLoader {
  /** The project's tsconfig.json, or null when there is none (its workers then get an empty one). */
  tsconfigPath: string | null;
  /** Whether the project needs `design:*` decorator metadata, so the layer that emits it. */
  decoratorMetadata: boolean;
  /** `--import` flags, in order, for the worker's node. */
  execArgv: string[];
  /** Added to every worker's environment. */
  env: Record<string, string>;
  /** Why the layer's disk cache is off when the user did not turn it off (to be said once), else null. */
  cacheOff: string | null;
}

/**
 * Works out the loader for a TypeScript entry: always tsx (resolution, `paths`, both module
 * systems); for a project with `emitDecoratorMetadata`, clusterd's layer after it, which compiles
 * the project's files with swc. Only then: measured, tsx alone starts a worker faster and smaller
 * (BENCHMARKS.md, "TypeScript loaders"). Throws a TypeScriptError for a project that cannot run as it is.
 */
export function typescriptLoader(entryPath: string, { env = process.env, cwd = process.cwd() } = {}): TypeScriptLoader {
  const explicit = env[TSCONFIG_ENV];
  const tsconfigPath = explicit ? resolve(cwd, explicit) : findTsconfig(dirname(entryPath));
  if (explicit && !existsSync(tsconfigPath!)) {
    throw new TypeScriptError(`${TSCONFIG_ENV} names ${tsconfigPath}, which does not exist: unset it to use the entry's nearest tsconfig.json, or fix the path`);
  }
  const options = tsconfigPath === null ? {} : checkedCompilerOptions(tsconfigPath);
  const decoratorMetadata = options.emitDecoratorMetadata === true;
  let cacheOff: string | null = null;
  if (decoratorMetadata) {
    checkTranspiler(tsconfigPath!);
    const dir = checkedCacheDir(env);
    if (dir === null && env[CACHE_ENV] !== '0') cacheOff = defaultCacheOff(env);
    pruneCache(dir);
  }

  // Without a tsconfig.json of its own, an entry must not pick up the one of the directory clusterd
  // was started in (tsx's fallback): an empty file is an empty configuration.
  const execArgv = ['--import', import.meta.resolve('tsx')];
  if (decoratorMetadata) execArgv.push('--import', new URL('../worker/typescript/metadata.js', import.meta.url).href);
  if (extname(entryPath) === '.cts' && !tsxHooksInThread()) {
    execArgv.push('--import', new URL('../worker/typescript/cjs-entry.js', import.meta.url).href);
  }
  return { tsconfigPath, decoratorMetadata, execArgv, env: { [TSCONFIG_ENV]: tsconfigPath ?? devNull }, cacheOff };
}

/** From which release of each Node line tsx (4.23) runs its module hooks in-thread (module.registerHooks), by its own feature table; every line after 25 does. */
const TSX_IN_THREAD_SINCE: Readonly<Record<number, readonly [minor: number, patch: number]>> = { 22: [22, 3], 24: [11, 1], 25: [1, 0] };

/**
 * Whether tsx runs its module hooks on the main thread on this Node version (tsx 4.23's own table).
 * Where it does not, they run on Node's loader thread, and a `.cts` entry needs clusterd's hook
 * (src/worker/typescript/cjs-entry.ts) to run in the CommonJS loader. Where it does, the hook is left
 * out: with any hook on the loader thread, Node 24.22 gives a `.cts` entry a require() without
 * require.cache.
 */
export function tsxHooksInThread(version: string = process.versions.node): boolean {
  const [major = 0, minor = 0, patch = 0] = version.split('.').map(Number);
  if (major > 25) return true;
  const since = TSX_IN_THREAD_SINCE[major];
  return since !== undefined && (minor > since[0] || (minor === since[0] && patch >= since[1]));
}

/**
 * The layer's cache folder for this environment (the workers inherit it, so it is theirs too), or
 * null when off or unusable. What the user set and the workers would ignore is refused in one line:
 * a CLUSTERD_TS_CACHE other than 0 or 1, a relative CLUSTERD_TS_CACHE_DIR, or one that is not a
 * folder of this user's that no other user may write to.
 */
export function checkedCacheDir(env: NodeJS.ProcessEnv = process.env): string | null {
  const switched = env[CACHE_ENV];
  if (switched !== undefined && switched !== '0' && switched !== '1') {
    throw new TypeScriptError(`${CACHE_ENV} is \`${switched}\`: set it to 0 to turn the TypeScript cache off, or to 1 (or unset it) to keep it`);
  }
  const chosen = env[CACHE_DIR_ENV];
  if (switched === '0' || !chosen) return cacheDir(env);
  if (!isAbsolute(chosen)) throw new TypeScriptError(`${CACHE_DIR_ENV} must be an absolute path (the workers run in the app's directory), got \`${chosen}\``);
  const dir = cacheDir(env);
  if (dir === null) {
    throw new TypeScriptError(`${CACHE_DIR_ENV}=${chosen} cannot be used: it must be a folder of this user's (or one clusterd can create) that no other user may write to`);
  }
  return dir;
}

/** Why the default cache folder cannot be used (another user made it first, or tmpdir is not writable). */
function defaultCacheOff(env: NodeJS.ProcessEnv): string {
  const uid = process.getuid?.();
  const where = uid === undefined ? 'this platform has no user ids' : `${defaultCacheDir(uid, env)} is not a folder of this user's alone (another user may have made it)`;
  return `the TypeScript layer's disk cache is off, so every worker compiles the project again: ${where}; set ${CACHE_DIR_ENV} to a folder of yours, or ${CACHE_ENV}=0 to say it is meant`;
}

/** The nearest tsconfig.json from `dir` up to the root, or null. */
export function findTsconfig(dir: string): string | null {
  for (let current = resolve(dir); ; current = dirname(current)) {
    const candidate = join(current, 'tsconfig.json');
    if (existsSync(candidate)) return candidate;
    if (dirname(current) === current) return null;
  }
}

/**
 * Checks the tsconfig.json a running cluster's workers read (`tsconfigPath`, found at start) again,
 * as start did: each worker a reload, restart or scale up forks reads it anew, through get-tsconfig,
 * which reads a file it cannot parse as empty and so drops its options (decorator metadata) in
 * silence. Throws the TypeScriptError `start` would give. Whether the project needs the
 * decorator-metadata layer stays as decided at start.
 */
export function recheckTsconfig(tsconfigPath: string): void {
  if (!existsSync(tsconfigPath)) {
    throw new TypeScriptError(`${tsconfigPath}, which the cluster's workers read, does not exist (moved or deleted since the cluster started?): restore it, or start the cluster again`);
  }
  checkedCompilerOptions(tsconfigPath);
}

/** compilerOptions(), and refused as tsc refuses it: emitDecoratorMetadata without experimentalDecorators. */
function checkedCompilerOptions(tsconfigPath: string): NonNullable<TsConfigJson['compilerOptions']> {
  const options = compilerOptions(tsconfigPath);
  if (options.emitDecoratorMetadata === true && options.experimentalDecorators !== true) {
    // tsc's error TS5052: metadata exists only for the legacy (experimental) decorators.
    throw new TypeScriptError(`${tsconfigPath} sets emitDecoratorMetadata without experimentalDecorators, which tsc refuses (TS5052): set "experimentalDecorators": true`);
  }
  return options;
}

/**
 * The compiler options of a tsconfig.json, `extends` followed. get-tsconfig (tsx's own reader)
 * ignores what it cannot parse, so the file is first parsed strictly, as tsc would: JSON with
 * comments and trailing commas; and so is each file it extends (`./tsconfig.base.json`, or a
 * monorepo's shared package `@org/tsconfig/base.json`, where a typo would otherwise drop options in
 * silence). A file get-tsconfig would not find is left to it, to say so with tsc's wording.
 */
function compilerOptions(tsconfigPath: string): NonNullable<TsConfigJson['compilerOptions']> {
  checkStrictly(tsconfigPath, null, tsconfigPath, new Set());
  try {
    return parseTsconfig(tsconfigPath).compilerOptions ?? {};
  } catch (error) {
    // A missing `extends` target: get-tsconfig says which.
    throw new TypeScriptError(`${tsconfigPath}: ${oneLine(error).replace(/\.$/, '')}: fix its "extends" (or install the package it names)`, error);
  }
}

/** The most files one `extends` chain is followed through (tsc reports a cycle; this only stops). */
const MAX_EXTENDS_DEPTH = 32;

/** Parses `path` as tsc would, then each file it extends (by a path or a package's name, see extendedFile); throws a TypeScriptError naming the file (`project`: the tsconfig.json it serves). */
function checkStrictly(path: string, extendedBy: string | null, project: string, seen: Set<string>): void {
  if (seen.has(path) || seen.size >= MAX_EXTENDS_DEPTH) return;
  seen.add(path);
  const via = extendedBy === null ? '' : ` (extended by ${extendedBy})`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // A missing extended file is get-tsconfig's to report, with tsc's wording.
    if (extendedBy !== null && code === 'ENOENT') return;
    throw new TypeScriptError(`cannot read ${path}${via} (${code}): fix its permissions${extendedBy === null ? `, or set ${TSCONFIG_ENV} to another tsconfig.json` : ''}`, error);
  }
  // A byte-order mark (Visual Studio writes one) is whitespace to tsc, and no column to an editor.
  text = text.replace(/^\uFEFF/, '');
  let value: unknown;
  try {
    value = JSON.parse(stripJsonComments(text, { trailingCommas: true }));
  } catch (error) {
    throw new TypeScriptError(`${path}${via} is not valid JSON (${jsonComplaint(error, text)}): fix it (\`npx tsc --showConfig -p ${project}\` shows what tsc reads)`, error);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeScriptError(`${path}${via} is not a JSON object: fix it (\`npx tsc --showConfig -p ${project}\` shows what tsc reads)`);
  }
  const { extends: extended } = value as { extends?: unknown };
  for (const target of Array.isArray(extended) ? extended : [extended]) {
    const file = typeof target === 'string' ? extendedFile(target, path) : null;
    if (file !== null) checkStrictly(file, path, project, seen);
  }
}

/**
 * JSON.parse's complaint about `text`, on one line, with the line and column of the offset it names:
 * Node 20 says only `at position 130` (Node 22 and later add `(line 5 column 5)` themselves).
 * The offset counts in the text with comments and trailing commas blanked, which keeps every
 * character's place. A complaint that quotes the text (`Unexpected token '}', "{"a": 1,\n..." is
 * not valid JSON`) keeps its newlines as `\n`, where it was cut at the first one.
 */
export function jsonComplaint(error: unknown, text: string): string {
  const message = (error instanceof Error ? error.message : String(error)).replace(/\r?\n/g, '\\n');
  const at = /at position (\d+)(?!\d| \(line)/.exec(message);
  if (!at) return message;
  const before = text.slice(0, Number(at[1]));
  const line = before.split('\n').length;
  const column = before.length - before.lastIndexOf('\n');
  return message.replace(at[0], `${at[0]} (line ${line} column ${column})`);
}

/**
 * The file `extends: target` names in the tsconfig at `from`, as tsc looks for it: a path as given,
 * else with `.json`; a package by its package.json's `tsconfig` field, else its tsconfig.json; a
 * file in a package as Node resolves it, else with `.json`. Null where none is found.
 */
function extendedFile(target: string, from: string): string | null {
  if (target.startsWith('./') || target.startsWith('../') || isAbsolute(target)) {
    const file = resolve(dirname(from), target);
    return !existsSync(file) && !file.endsWith('.json') ? `${file}.json` : file;
  }
  const require = createRequire(from);
  const found = (specifier: string): string | null => {
    try {
      return require.resolve(specifier);
    } catch {
      return null;
    }
  };
  // `name` or `@scope/name`, no path inside it.
  if (/^(@[^/]+\/)?[^/@][^/]*$/.test(target)) {
    const manifest = found(`${target}/package.json`);
    if (manifest !== null) {
      let field: unknown;
      try {
        field = (JSON.parse(readFileSync(manifest, 'utf8')) as { tsconfig?: unknown }).tsconfig;
      } catch {
        // A broken package.json is the package manager's to report.
      }
      if (typeof field === 'string') return resolve(dirname(manifest), field);
    }
    return found(`${target}/tsconfig.json`);
  }
  if (target.endsWith('.json')) return found(target);
  // Not Node's own extensions: `@org/tsconfig/base` is base.json to tsc, even beside a base.js.
  const file = found(`${target}.json`) ?? found(target);
  return file !== null && !/\.(c|m)?js$|\.node$/.test(file) ? file : null;
}

/**
 * Whether the decorator-metadata transpiler loads and works on this machine (a native package: its
 * build for this platform may be missing). Checked in a child process, so the master does not
 * carry the transpiler for the life of the cluster.
 */
export function checkTranspiler(tsconfigPath: string, specifier = METADATA_TRANSPILER): void {
  const remedy = `reinstall clusterd's dependencies on this machine (npm install), or turn emitDecoratorMetadata off in ${relative(process.cwd(), tsconfigPath) || tsconfigPath}`;
  let url: string;
  try {
    url = import.meta.resolve(specifier);
  } catch (error) {
    throw new TypeScriptError(`this project sets emitDecoratorMetadata, which needs ${specifier}, and it is not installed: ${remedy}`, error);
  }
  const probe = `const { transformSync } = await import(${JSON.stringify(url)}); transformSync('@d class A { constructor(a: A) {} }', { jsc: { parser: { syntax: 'typescript', decorators: true }, transform: { legacyDecorator: true, decoratorMetadata: true } } });`;
  const result = spawnSync(process.execPath, ['--input-type=module', '--eval', probe], { encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) {
    const why = result.error ? oneLine(result.error) : lastErrorLine(result.stderr);
    throw new TypeScriptError(`this project sets emitDecoratorMetadata, which needs ${specifier}, and it does not load here (${why}): ${remedy}`);
  }
}

/** The line of a Node error dump that names the error (`Error: ...`), or its first line. */
function lastErrorLine(stderr: string): string {
  const lines = stderr.split('\n').map((line) => line.trim()).filter(Boolean);
  return lines.find((line) => /^\w*Error\b/.test(line)) ?? lines[0] ?? 'no output';
}
