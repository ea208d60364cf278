// Works out how to run the user's entry: the file itself, and the node flags it needs.
import { accessSync, constants, statSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { inspectorArgs } from './inspector.js';
import { typescriptLoader } from './typescript.js';
import { UsageError } from '../errors.js';
import { logicalCwd } from '../system/working-dir.js';

const TYPESCRIPT = new Set(['.ts', '.mts', '.cts', '.tsx']);
/** What Node runs itself (behind the worker's --import, an entry goes through the ES module loader, which knows no other extension). */
const JAVASCRIPT = new Set(['.js', '.mjs', '.cjs']);

export interface Entry {
  /** Absolute path of the entry file (through symlinks as given: a deploy's `current` is followed anew at each fork). */
  path: string;
  /** The workers' working directory, absolute, symlinks kept (--cwd, else where clusterd was started: logicalCwd()). */
  cwd: string;
  /** Node flags every worker is started with, the loader first, then clusterd's runtime. */
  execArgv: string[];
  /** Added to every worker's environment (a TypeScript entry's tsconfig.json, for its loader). */
  env: Record<string, string>;
  /** Why the TypeScript layer's disk cache is off though the user did not turn it off, else null. */
  typescriptCacheOff: string | null;
}

/** The app's environment before clusterd's own variables: this process's, the configuration's on top. */
export function appEnvironment(configEnv: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...configEnv };
}

/**
 * Validates the entry file (found from `cwd` when relative) and a TypeScript entry's project, and
 * builds the worker's execArgv; throws a UsageError or TypeScriptError. `workerEnv` is the workers'
 * environment (appEnvironment()): the TypeScript layer's settings are
 * read from it, as the workers will read them.
 */
export function resolveEntry(file: string, nodeArgs: readonly string[] = [], cwd = logicalCwd(), workerEnv: NodeJS.ProcessEnv = process.env): Entry {
  const path = resolve(cwd, file);
  try {
    if (!statSync(path).isFile()) throw new UsageError(`entry \`${file}\` is not a file`);
    accessSync(path, constants.R_OK);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'ENOENT' ? `entry file not found: ${path}` : `cannot read entry file ${path} (${code})`);
  }
  const extension = extname(path);
  if (extension !== '' && !JAVASCRIPT.has(extension) && !TYPESCRIPT.has(extension)) {
    throw new UsageError(`entry \`${file}\` is not JavaScript or TypeScript: it should end in .js, .mjs, .cjs, .ts, .mts, .cts or .tsx (or have no extension)`);
  }
  // The inspector flags first, so that the user's own node flags come after and win.
  const execArgv = [...inspectorArgs(nodeArgs), ...nodeArgs];
  // An explicit execArgv replaces the parent's, so the loader must be named here every time.
  let env: Record<string, string> = {};
  let typescriptCacheOff: string | null = null;
  if (TYPESCRIPT.has(extname(path))) {
    const loader = typescriptLoader(path, { env: workerEnv, cwd });
    execArgv.push(...loader.execArgv);
    env = loader.env;
    typescriptCacheOff = loader.cacheOff;
  }
  execArgv.push('--import', new URL('../worker/preload.js', import.meta.url).href);
  return { path, cwd, execArgv, env, typescriptCacheOff };
}
