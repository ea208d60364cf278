// Where control sockets live: one private directory per user, one socket per cluster name.
// The directory's 0700 mode (and the sockets' 0600) is the whole access control of the unix
// socket transport, so it is checked every time a master binds, and never repaired: clusterd
// changes the mode of no directory it did not create (CLUSTERD_RUNTIME_DIR=/tmp, chmodded to
// 0700 as root, would break the machine). A shared directory gets a private subdirectory instead.
import { accessSync, chmodSync, constants, existsSync, lstatSync, mkdirSync, statSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ClusterdError } from '../errors.js';
import { CLUSTER_NAME_PATTERN } from '../options.js';

/** Cluster names are file names here: `--name`'s alphabet (src/options.ts). */
export const CLUSTER_NAME = CLUSTER_NAME_PATTERN;

export const SOCKET_SUFFIX = '.sock';

/** sun_path is 108 bytes on Linux and 104 on macOS, including the terminating NUL. */
const MAX_SOCKET_PATH = 103;

/**
 * The runtime directory for this user, without creating it: $CLUSTERD_RUNTIME_DIR, else
 * $XDG_RUNTIME_DIR/clusterd, else <tmpdir>/clusterd-<uid>; or, when that directory exists and is
 * shared (see privateDirIn), the subdirectory clusterd-<uid> in it. Clients and masters resolve
 * it alike, so they meet in the same place.
 */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env): string {
  return privateDirIn(baseRuntimeDir(env));
}

function baseRuntimeDir(env: NodeJS.ProcessEnv): string {
  const own = env.CLUSTERD_RUNTIME_DIR;
  // Absolute: a relative one would be a different directory for each command run elsewhere, and a
  // cluster started in one directory would be found from no other.
  if (own && !isAbsolute(own)) throw runtimeDirError(`CLUSTERD_RUNTIME_DIR must be an absolute path, got \`${own.slice(0, 200)}\``);
  if (own) return resolve(own);
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && isWritableDir(xdg)) return join(xdg, 'clusterd');
  return join(tmpdir(), `clusterd-${uid()}`);
}

/**
 * `dir` itself when it is missing (it will be created 0700) or private to this user; when it is a
 * shared directory that others cannot empty under us (sticky like /tmp, or writable by its owner
 * alone, this user or root), the subdirectory clusterd-<uid> in it. Anything else (a symlink, a
 * directory others may rename entries in) is returned as is, for ensureRuntimeDir to refuse.
 */
function privateDirIn(dir: string): string {
  let stats: Stats;
  try {
    stats = lstatSync(dir);
  } catch {
    return dir;
  }
  if (!stats.isDirectory() || isPrivate(stats)) return dir;
  const trustedOwner = stats.uid === uid() || stats.uid === 0;
  const othersCannotRemove = (stats.mode & 0o1000) !== 0 || (stats.mode & 0o022) === 0;
  return trustedOwner && othersCannotRemove ? join(dir, `clusterd-${uid()}`) : dir;
}

/**
 * Creates the runtime directory if needed and checks that only this user can enter it. Throws,
 * with one line, for a directory that exists and is not private: its mode is not changed.
 */
export function ensureRuntimeDir(dir: string = runtimeDir()): string {
  let created: string | undefined;
  try {
    created = makeDir(dir);
  } catch (error) {
    throw runtimeDirError(`cannot create the runtime directory ${dir}`, error);
  }
  // lstat, not stat: a symlink planted in a shared /tmp must not redirect our sockets.
  const stats = lstatSync(dir);
  const notOurs = notOwnDirectory(dir, stats);
  if (notOurs !== null) throw runtimeDirError(notOurs);
  // Ours, but no socket or log file could be made in it (a mode without write, a read-only mount).
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (error) {
    throw runtimeDirError(`the runtime directory ${dir} cannot be written (fix its permissions, or set CLUSTERD_RUNTIME_DIR to another directory)`, error);
  }
  if ((stats.mode & 0o777) === 0o700) return dir;
  // Ours since a moment ago: the umask may have taken the owner's bits (it never adds others').
  if (created !== undefined && resolve(created) === resolve(dir) && (stats.mode & 0o077) === 0) {
    try {
      chmodSync(dir, 0o700);
      return dir;
    } catch (error) {
      throw runtimeDirError(`cannot make the runtime directory ${dir} usable (mode 0700)`, error);
    }
  }
  if (isPrivate(stats)) return dir;
  throw runtimeDirError(
    `${openToOthers(dir, stats)} and clusterd changes no directory it did not create: ` +
      'make it private (chmod 700) or set CLUSTERD_RUNTIME_DIR to a private directory, or to a sticky one such as /tmp',
  );
}

/**
 * The client's side of ensureRuntimeDir: before a command reads the runtime directory and connects
 * to a socket in it, the same rules, as anyone who can write there could answer as a cluster.
 * Creates nothing, and a missing directory is no error (false: no cluster runs).
 */
export function checkRuntimeDirToRead(dir: string = runtimeDir(), env: NodeJS.ProcessEnv = process.env): boolean {
  let stats: Stats;
  try {
    stats = lstatSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw runtimeDirError(`cannot read the runtime directory ${dir}`, error);
  }
  const unsafe = unsafeToRead(dir, stats, { uid: uid(), named: namedRuntimeDir(dir, env) });
  if (unsafe !== null) {
    throw runtimeDirError(
      `${unsafe}, so clusterd trusts no control socket in it (a directory of this user's alone, mode 0700, is used; see CLUSTERD_RUNTIME_DIR)`,
    );
  }
  return true;
}

/**
 * Why the client must not trust a socket in `dir`; null if it may. `named`: `dir` is the
 * CLUSTERD_RUNTIME_DIR the user set, not one derived from the defaults.
 */
export function unsafeToRead(dir: string, stats: Pick<Stats, 'uid' | 'mode' | 'isDirectory' | 'isSymbolicLink'>, { uid, named }: { uid: number; named: boolean }): string | null {
  // Root may read another user's private directory that root names (`sudo CLUSTERD_RUNTIME_DIR=...
  // clusterd stop api`): only that user, whose clusters they are, can put a socket in it. Not root's
  // own default (/tmp/clusterd-0): any user may make that before root does, and answer as its clusters.
  if (uid === 0 && named && stats.isDirectory() && !stats.isSymbolicLink() && (stats.mode & 0o077) === 0) return null;
  return notOwnDirectory(dir, stats, uid) ?? (isPrivate(stats, uid) ? null : openToOthers(dir, stats));
}

/** Whether `dir` is the runtime directory CLUSTERD_RUNTIME_DIR names itself (not a subdirectory clusterd picked in it). */
function namedRuntimeDir(dir: string, env: NodeJS.ProcessEnv): boolean {
  const own = env.CLUSTERD_RUNTIME_DIR;
  return own !== undefined && own !== '' && isAbsolute(own) && resolve(own) === resolve(dir);
}

/** Why `dir` can hold no control socket whatever its mode (a link, not a directory, another user's); null if none. */
function notOwnDirectory(dir: string, stats: Pick<Stats, 'uid' | 'isDirectory' | 'isSymbolicLink'>, own = uid()): string | null {
  if (stats.isSymbolicLink()) return `the runtime directory ${dir} is a symbolic link; refusing to follow it`;
  if (!stats.isDirectory()) return `the runtime directory ${dir} is not a directory`;
  if (stats.uid !== own) return `the runtime directory ${dir} belongs to uid ${stats.uid}, not to this user (uid ${own})`;
  return null;
}

function openToOthers(dir: string, stats: Pick<Stats, 'mode'>): string {
  const mode = (stats.mode & 0o7777).toString(8).padStart(4, '0');
  return `the runtime directory ${dir} is open to other users (mode ${mode})`;
}

/**
 * mkdir -p, mode 0700; returns the first directory it made, as mkdirSync's recursive form does.
 * Made one level at a time: Node's recursive mkdir spins for good where the file system answers
 * ENOENT to a directory whose parent exists (under /proc), and names ENOENT where it is EROFS.
 */
function makeDir(dir: string): string | undefined {
  try {
    mkdirSync(dir, { mode: 0o700 });
    return dir;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return undefined;
    const parent = dirname(dir);
    if (code !== 'ENOENT' || parent === dir || existsSync(parent)) throw error;
  }
  const first = makeDir(dirname(dir));
  mkdirSync(dir, { mode: 0o700 });
  return first ?? dir;
}

/** Owned by this user, and no access for anyone else. */
function isPrivate(stats: Pick<Stats, 'uid' | 'mode'>, own = uid()): boolean {
  return stats.uid === own && (stats.mode & 0o077) === 0;
}

/** The socket of the cluster `name` in `dir`. */
export function socketPath(name: string, dir: string = runtimeDir()): string {
  const path = join(dir, `${name}${SOCKET_SUFFIX}`);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw runtimeDirError(
      `the control socket path ${path} is longer than unix sockets allow (${MAX_SOCKET_PATH} bytes): use a shorter --name or CLUSTERD_RUNTIME_DIR`,
    );
  }
  return path;
}

/** The cluster name a socket file stands for, or null for any other file. */
export function nameOfSocket(fileName: string): string | null {
  if (!fileName.endsWith(SOCKET_SUFFIX)) return null;
  const name = fileName.slice(0, -SOCKET_SUFFIX.length);
  return CLUSTER_NAME.test(name) ? name : null;
}

function isWritableDir(path: string): boolean {
  try {
    accessSync(path, constants.W_OK | constants.X_OK);
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function uid(): number {
  // process.getuid is absent on Windows only, which clusterd does not support (unix sockets).
  return process.getuid?.() ?? 0;
}

function runtimeDirError(message: string, cause?: unknown): ClusterdError {
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  return new ClusterdError('ERR_CLUSTERD_RUNTIME_DIR', `${message}${detail}`, { cause });
}
