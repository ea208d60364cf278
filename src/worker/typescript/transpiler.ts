// What the decorator-metadata layer asks of a transpiler, and which module system a TypeScript
// file compiles to (Node's own rules, as tsc applies them under `module: nodenext`).
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, extname, isAbsolute, join, sep } from 'node:path';
import { threadId } from 'node:worker_threads';

export type ModuleFormat = 'module' | 'commonjs';

/** Compiles one TypeScript file to JavaScript of the given module system, with an inline source map. */
export type Transpile = (source: string, file: string, format: ModuleFormat) => string;

/** A transpiler module (its URL travels to the loader thread) exports `createTranspiler`. */
export interface TranspilerModule {
  /**
   * Builds the transpiler for the project whose tsconfig.json (absolute path) is given. Synchronous,
   * so that a thread loads the compiler only once it has a file to compile: on a given Node most
   * files go through one of the layer's hooks, and the other thread never pays for it.
   */
  createTranspiler(tsconfigPath: string): Transpile;
  /**
   * What decides its output besides the file itself (the compiler's version, the options it derives
   * from tsconfig.json), for the disk cache; cheap, without loading the compiler. Without it nothing
   * is cached.
   */
  identity?(tsconfigPath: string): string;
}

/** 0 turns the disk cache off; CACHE_DIR_ENV puts it elsewhere (checked by the master at start: src/master/typescript.ts). */
export const CACHE_ENV = 'CLUSTERD_TS_CACHE';
export const CACHE_DIR_ENV = 'CLUSTERD_TS_CACHE_DIR';

/** Bumped when what the layer does with a transpiler's output changes: older entries are not read. */
const CACHE_FORMAT = 1;

/**
 * The transpiler of a module, built on the first file it has to compile (then kept). With a cache
 * folder (cacheDir()), each file's output is kept on disk under a hash of the transpiler's identity,
 * the file's path, its module system and its source: a file is compiled again only once it changed
 * (workers that start at the same moment on a cold cache each compile it; every restart, reload and
 * later start reads it), and a worker that finds every file there never loads the compiler (tsx
 * keeps a cache of its own output the same way).
 */
export function lazyTranspiler(module: TranspilerModule, tsconfigPath: string, cache: string | null = cacheDir()): Transpile {
  let transpile: Transpile | undefined;
  const compile: Transpile = (source, file, format) => (transpile ??= module.createTranspiler(tsconfigPath))(source, file, format);
  const identify = module.identity?.bind(module);
  if (cache === null || !identify) return compile;
  let identity: string | undefined;
  return (source, file, format) => {
    identity ??= identify(tsconfigPath);
    const key = createHash('sha256').update(`${CACHE_FORMAT}\0${identity}\0${file}\0${format}\0`).update(source).digest('hex');
    const path = join(cache, `${key}.js`);
    try {
      return readFileSync(path, 'utf8');
    } catch {
      // Not compiled yet (or the folder went away): compile, and keep it for the next one.
    }
    const code = compile(source, file, format);
    store(path, code);
    return code;
  };
}

/**
 * The cache folder when CLUSTERD_TS_CACHE_DIR is not set: this user's in the temporary folder of the
 * environment `env`, as os.tmpdir() would name it in a process started with it (the master checks the
 * workers' folder from their environment, which may set TMPDIR otherwise than its own).
 */
export function defaultCacheDir(uid: number, env: NodeJS.ProcessEnv = process.env): string {
  // os.tmpdir() on POSIX (the only platform with a cache: it needs user ids), read from `env`.
  let base = env.TMPDIR || env.TMP || env.TEMP || '/tmp';
  if (base.length > 1 && base.endsWith('/')) base = base.slice(0, -1);
  return join(base, `clusterd-ts-${uid}`);
}

/**
 * The layer's disk cache: CLUSTERD_TS_CACHE_DIR (an absolute path), or clusterd-ts-<uid> in the
 * system's temporary folder, created for this user alone. None with CLUSTERD_TS_CACHE=0, where
 * there are no user ids (Windows), or when the folder is not a directory of this user's that no one
 * else may write to: code read from it runs as this user, so another user must not be able to put
 * any there (a folder made in /tmp ahead of us, or a link to one).
 */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env[CACHE_ENV] === '0') return null;
  const uid = process.getuid?.();
  if (uid === undefined) return null;
  const chosen = env[CACHE_DIR_ENV];
  const dir = chosen && isAbsolute(chosen) ? chosen : defaultCacheDir(uid, env);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const stat = lstatSync(dir);
    return stat.isDirectory() && stat.uid === uid && (stat.mode & 0o022) === 0 ? dir : null;
  } catch {
    return null;
  }
}

/** How long an entry may go unused (neither read nor written) before pruneCache() removes it. */
export const CACHE_MAX_AGE_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * Removes the entries unused for CACHE_MAX_AGE_MS: the cache otherwise only grows, one entry per
 * version of each file. Unused: the later of the last write and the last read (atime, as the mount
 * keeps it: relatime, the default, updates it at most daily; noatime never, and an entry then lives
 * 30 days from its write, and is compiled again once). Called when a cluster starts; never throws.
 */
export function pruneCache(dir: string | null = cacheDir(), now = Date.now()): number {
  if (dir === null) return 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (!name.endsWith('.js') && !name.endsWith('.tmp')) continue;
    const path = join(dir, name);
    try {
      const { atimeMs, mtimeMs } = statSync(path);
      if (now - Math.max(atimeMs, mtimeMs) < CACHE_MAX_AGE_MS) continue;
      unlinkSync(path);
      removed++;
    } catch {
      // Removed meanwhile (another cluster pruning too).
    }
  }
  return removed;
}

/** Writes an entry whole or not at all (a reader never sees half of one): a file of its own, renamed into place. */
function store(path: string, code: string): void {
  const temporary = `${path}.${process.pid}-${threadId}.tmp`;
  try {
    writeFileSync(temporary, code, { mode: 0o600 });
    renameSync(temporary, path);
  } catch {
    // A full disk, a folder removed meanwhile: the file was compiled, it is only not kept.
    try {
      unlinkSync(temporary);
    } catch {
      // Never written.
    }
  }
}

const TYPESCRIPT = new Set(['.ts', '.tsx', '.mts', '.cts']);
const packageTypes = new Map<string, ModuleFormat>();

/**
 * The module system of a TypeScript file the layer compiles, or null for a file it leaves to tsx:
 * not TypeScript, or inside node_modules (packages ship JavaScript; Node refuses to strip types
 * there too). `.mts`/`.cts` say it themselves; `.ts`/`.tsx` follow the nearest package.json `type`.
 */
export function formatOf(file: string): ModuleFormat | null {
  const extension = extname(file);
  if (!TYPESCRIPT.has(extension) || file.includes(`${sep}node_modules${sep}`)) return null;
  if (extension === '.mts') return 'module';
  if (extension === '.cts') return 'commonjs';
  return packageType(dirname(file));
}

function packageType(dir: string): ModuleFormat {
  const known = packageTypes.get(dir);
  if (known) return known;
  let type: ModuleFormat;
  try {
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { type?: unknown };
    type = manifest.type === 'module' ? 'module' : 'commonjs';
  } catch (error) {
    // No package.json here (or one Node could not read either): ask the parent, as Node does.
    const parent = dirname(dir);
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === dir) type = 'commonjs';
    else type = packageType(parent);
  }
  packageTypes.set(dir, type);
  return type;
}
