// Works out how to run the user's entry: the file itself, and the node flags it needs.
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { inspectorArgs } from './inspector.js';
import { typescriptLoader } from './typescript.js';
import { UsageError, clip, oneLine } from '../errors.js';
import { DASHBOARD_TOKEN_ENV, TOKEN_ENV } from '../control/options.js';
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
  /** A TypeScript entry's tsconfig.json, which every worker reads as it starts (checked again before a reload); else null. */
  tsconfigPath: string | null;
  /** Why the TypeScript layer's disk cache is off though the user did not turn it off, else null. */
  typescriptCacheOff: string | null;
  /** Given a directory: the name it suggests for the cluster (its package's name, else its own), else absent. */
  directoryName?: string;
}

/**
 * The app's environment before clusterd's own variables: this process's, the configuration's on top.
 * The master's tokens ($CLUSTERD_CONTROL_TOKEN, $CLUSTERD_DASHBOARD_TOKEN: the way to keep them out
 * of `ps`) stay out of it: the app is not trusted, and an app's crash reporter or debug page that
 * shows its environment would hand out the right to stop the cluster. The config's env may still
 * give them on purpose.
 */
export function appEnvironment(configEnv: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env[TOKEN_ENV];
  delete env[DASHBOARD_TOKEN_ENV];
  return { ...env, ...configEnv };
}

/**
 * Validates the entry file (found from `cwd` when relative) and a TypeScript entry's project, and
 * builds the worker's execArgv; throws a UsageError or TypeScriptError. `workerEnv` is the workers'
 * environment (appEnvironment()): the TypeScript layer's settings are
 * read from it, as the workers will read them.
 */
export function resolveEntry(file: string, nodeArgs: readonly string[] = [], cwd = logicalCwd(), workerEnv: NodeJS.ProcessEnv = process.env): Entry {
  let path = resolve(cwd, file);
  let directoryName: string | undefined;
  try {
    if (statSync(path).isDirectory()) ({ path, name: directoryName } = entryInDirectory(path, file));
    if (!statSync(path).isFile()) throw new UsageError(`entry \`${file}\` is not a file`);
    accessSync(path, constants.R_OK);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'ENOENT' ? `entry file not found: ${path}` : `cannot read entry file ${path} (${code})`);
  }
  // Node resolves the main module through its ES module loader once a preload is given (--import,
  // which every worker has), and that loader refuses a path with a backslash (encoded as %5C): every
  // worker failed to boot with its stack, where plain `node` runs the file.
  if (path.includes('\\')) {
    throw new UsageError(`entry ${path} has a backslash in its path, which Node cannot load with a preload (--import, as clusterd's workers run): rename it`);
  }
  const extension = extname(path);
  if (extension !== '' && !JAVASCRIPT.has(extension) && !TYPESCRIPT.has(extension)) {
    throw new UsageError(`entry \`${file}\` is not JavaScript or TypeScript: it should end in .js, .mjs, .cjs, .ts, .mts, .cts or .tsx (or have no extension)`);
  }
  // The inspector flags last: they leave out or add to what the user's own (these, NODE_OPTIONS) say.
  const execArgv = [...nodeArgs, ...inspectorArgs(nodeArgs, workerEnv.NODE_OPTIONS)];
  // An explicit execArgv replaces the parent's, so the loader must be named here every time.
  let env: Record<string, string> = {};
  let typescriptCacheOff: string | null = null;
  let tsconfigPath: string | null = null;
  if (TYPESCRIPT.has(extname(path))) {
    const loader = typescriptLoader(path, { env: workerEnv, cwd });
    execArgv.push(...loader.execArgv);
    env = loader.env;
    typescriptCacheOff = loader.cacheOff;
    tsconfigPath = loader.tsconfigPath;
  }
  execArgv.push('--import', new URL('../worker/preload.js', import.meta.url).href);
  return { path, cwd, execArgv, env, tsconfigPath, typescriptCacheOff, ...(directoryName === undefined ? {} : { directoryName }) };
}

/** What a directory's main or index file may end in, in the order tried: Node's own, then TypeScript. */
const DIRECTORY_ENTRY_EXTENSIONS = ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts', '.tsx'];

/**
 * A directory given as the entry (`clusterd start .`), taken as `node DIR` takes it: the file its
 * package.json's "main" names (as written, or with one of the extensions, or its index file), else
 * its own index file; a TypeScript one too. Read once, at start: a reload runs the same file.
 */
function entryInDirectory(dir: string, file: string): { path: string; name: string } {
  let main: unknown;
  let packageName: unknown;
  let manifest: string | null = null;
  try {
    manifest = readFileSync(join(dir, 'package.json'), 'utf8');
  } catch {
    // No package.json (or none readable): the index file, as Node does.
  }
  if (manifest !== null) {
    try {
      const parsed = JSON.parse(manifest) as { main?: unknown; name?: unknown } | null;
      main = parsed?.main;
      packageName = parsed?.name;
    } catch (error) {
      throw new UsageError(`entry \`${file}\` is a directory whose package.json does not parse: ${oneLine(error)}`);
    }
  }
  const named = typeof main === 'string' && main.trim() !== '' ? clip(main, 200) : null;
  // `@scope/api` -> `api`; made to fit a cluster name by the caller.
  const name = typeof packageName === 'string' && packageName.trim() !== '' ? packageName.slice(packageName.lastIndexOf('/') + 1) : basename(dir);
  const candidates = named === null
    ? DIRECTORY_ENTRY_EXTENSIONS.map((extension) => `index${extension}`)
    : [named, ...DIRECTORY_ENTRY_EXTENSIONS.map((extension) => `${named}${extension}`), ...DIRECTORY_ENTRY_EXTENSIONS.map((extension) => join(named, `index${extension}`))];
  for (const candidate of candidates) {
    const path = resolve(dir, candidate);
    try {
      if (statSync(path).isFile()) return { path, name };
    } catch {
      // Not this one.
    }
  }
  throw new UsageError(
    named === null
      ? `entry \`${file}\` is a directory with no package.json "main" and no index file (index.js, index.ts, ...)`
      : `entry \`${file}\` is a directory whose package.json "main" (${named}) names no file`,
  );
}
