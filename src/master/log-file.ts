// --log-file: the master's and workers' lines go to a file instead of stdout/stderr. Written with
// one synchronous append per line, as to stdio: lines are whole, in order, and nothing is queued
// when the master exits. SIGUSR1 reopens the file (logrotate's `postrotate kill -USR1`, after it
// moved the file away); --log-max-size rotates it here, keeping --log-keep old files (FILE.1 is the
// newest).
//
// The file may sit in a directory others can write to (/tmp): whatever is at the path is opened
// with O_NOFOLLOW (and O_NONBLOCK: a FIFO put there cannot hold the master in open()), in such a
// directory it must be a regular file of this user's with one link, and the new file of a rotation
// is created with O_EXCL, so that nobody can point the master's (root's) lines at another file with
// a symlink or hard link planted there, before the start or between rename and reopen. In a
// directory only this user (or root) may write to, a file of another owner is taken as before (NFS
// with root_squash, a file provisioned ahead), and so is a character device (/dev/null).
import { closeSync, constants, existsSync, fstatSync, ftruncateSync, openSync, renameSync, rmSync, statSync, writeSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { UsageError, oneLine } from '../errors.js';
import type { OutputStream } from './logs.js';
import { errnoName, nativeHelper } from '../system/native.js';

/** A new log file's mode: the owner writes, its group (adm, say) reads. A file that exists keeps its own. */
export const LOG_FILE_MODE = 0o640;

/** The most old files --log-keep may ask for. */
export const MAX_LOG_KEEP = 100;

export interface LogFileOptions {
  path: string;
  /** Where the path was given, for the line that says it cannot be opened: `--log-file` (the default), or a config file's key. */
  given?: string;
  /** Rotate before a write would take the file past this many bytes; null: never. */
  maxSize: number | null;
  /** Rotated files kept (FILE.1 .. FILE.keep); 0: the file is emptied instead. */
  keep: number;
}

const APPEND = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** The log file opened to append to; a UsageError naming where its path was given when it cannot be, or must not be. */
export function openLogFile({ path, given = '--log-file' }: Pick<LogFileOptions, 'path' | 'given'>): number {
  try {
    return openOwnFile(path, LOG_FILE_MODE);
  } catch (error) {
    throw new UsageError(`${given}: cannot open ${path}: ${oneLine(error)}`);
  }
}

/**
 * Opens `path` to append to, creating it with `mode`; throws for a symbolic link (ELOOP, from
 * O_NOFOLLOW) and for what is there but not a regular file of this user's alone (see notOwnFile).
 */
function openOwnFile(path: string, mode: number): number {
  let fd: number;
  try {
    fd = openSync(path, APPEND, mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw new Error('it is a symbolic link; refusing to follow it (another user may have planted it)', { cause: error });
    throw error;
  }
  const why = notOwnFile(fstatSync(fd), process.getuid?.() ?? 0, sharedDirectory(dirname(path)));
  if (why !== null) {
    closeSync(fd);
    throw new Error(`${why}; refusing to write to it`);
  }
  return fd;
}

/**
 * Creates `path` anew to append to (O_EXCL): after a rotation renamed the file away, anything at
 * the path was put there by someone else in between, and is not written through.
 */
function createOwnFile(path: string, mode: number): number {
  try {
    return openSync(path, APPEND | constants.O_EXCL, mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST' && (error as NodeJS.ErrnoException).code !== 'ELOOP') throw error;
    throw new Error(`something was put at ${path} between its rotation and the new file's creation (another user's link?); not opened`, { cause: error });
  }
}

/**
 * Why a log file opened by its path is not one the master may write to; null if it is. In a
 * `shared` directory (see sharedDirectory), another user's file, or a second link to a file (a hard
 * link planted to one of root's), would take the master's lines where it was never asked to write
 * them; elsewhere only what is no file to append to (a FIFO, a socket) is refused.
 */
export function notOwnFile(stats: Pick<Stats, 'uid' | 'nlink' | 'isFile' | 'isCharacterDevice'>, uid: number = process.getuid?.() ?? 0, shared = true): string | null {
  if (!shared) return stats.isFile() || stats.isCharacterDevice() ? null : 'it is not a regular file';
  if (!stats.isFile()) return 'it is not a regular file';
  if (stats.uid !== uid) return `it belongs to uid ${stats.uid}, not to this user (uid ${uid})`;
  if (stats.nlink > 1) return `it has ${stats.nlink} hard links`;
  return null;
}

/**
 * Whether others may have put what is in `dir`: it is writable by its group or by all, or it is
 * neither this user's nor root's. Unknown (it cannot be read): taken as shared.
 */
function sharedDirectory(dir: string): boolean {
  const uid = process.getuid?.() ?? 0;
  const stats = statSync(dir, { throwIfNoEntry: false });
  return stats === undefined || (stats.mode & 0o022) !== 0 || (stats.uid !== uid && stats.uid !== 0);
}

/** Throws what the master would, opening the log file: start() checks it before it starts a master. */
export function checkLogFile(options: Pick<LogFileOptions, 'path' | 'given'>): void {
  closeSync(openLogFile(options));
}

export class LogFile implements OutputStream {
  readonly path: string;
  readonly #maxSize: number | null;
  readonly #keep: number;
  #fd: number;
  #size: number;
  /** Lines not written since a write failed (a full disk); null while writes succeed. */
  #unwritten: { lines: number; error: string } | null = null;
  /** A write failed part-way: the file ends inside a line. */
  #midLine = false;
  /** Why the last rotation failed, while rotations fail (said once per failure; the lines go on into the file). */
  #rotateFailed: string | null = null;
  /**
   * Of the master's own stdout and stderr, those open on this file (a daemon's: daemon-parent.ts), which
   * follow it to each new one; emptied where they cannot (no native helper: the master's native-missing
   * line says so; a helper without dup2: stdioStays).
   */
  readonly #stdio: number[];
  /** Why the master's own stdout and stderr stay on the first file, when they do (null: they follow it). */
  readonly stdioStays: string | null = null;
  /** Why the file's directory lets others tamper with the log (anyone may remove or rename its files), when it does. */
  readonly directoryOpen: string | null;
  /** Told, once writes succeed again, how many lines were not written and why (written to this file). */
  onRecovered: (lines: number, error: string) => void = () => {};
  /** Told, after the line that found it out is written, that the file was gone when it was to rotate (written to this file). */
  onGone: () => void = () => {};

  constructor({ path, given, maxSize, keep }: LogFileOptions) {
    this.path = path;
    this.#maxSize = maxSize;
    this.#keep = keep;
    this.#fd = openLogFile({ path, given });
    this.#size = fstatSync(this.#fd).size;
    this.directoryOpen = openDirectory(dirname(path));
    this.#stdio = [1, 2].filter((fd) => sameFile(fd, this.#fd));
    if (this.#stdio.length > 0 && !nativeHelper()?.dup2) {
      // Without any helper the master's native-missing line says this among the rest: one line, not two.
      if (nativeHelper()) this.stdioStays = 'the native helper was built before it had dup2: rebuild it';
      this.#stdio = [];
    }
  }

  write(text: string): void {
    const length = Buffer.byteLength(text);
    const gone = this.#maxSize !== null && this.#size > 0 && this.#size + length > this.#maxSize && this.#makeRoom();
    try {
      // A line cut short by the last failure is ended first, so that this one starts on its own.
      if (this.#midLine) this.#writeAll('\n', 1);
      this.#midLine = false;
      this.#writeAll(text, length);
    } catch (error) {
      // A full disk or a removed directory must not take the cluster down: the lines are counted, and
      // said in the file once it takes them again (and at once on stderr).
      if (this.#unwritten === null) {
        this.#unwritten = { lines: 0, error: (error as NodeJS.ErrnoException).code ?? oneLine(error) };
        process.stderr.write(`clusterd: writing ${this.path} failed: ${oneLine(error)}\n`);
      }
      this.#unwritten.lines++;
      return;
    }
    if (gone) this.onGone();
    const unwritten = this.#unwritten;
    if (unwritten === null) return;
    this.#unwritten = null;
    this.onRecovered(unwritten.lines, unwritten.error);
  }

  /**
   * Writes all of `text` (`length` bytes) in one call, as a rule; a full disk takes part of a write
   * before it fails, and only then is the rest written from its bytes.
   */
  #writeAll(text: string, length: number): void {
    let offset = 0;
    let bytes: Buffer | null = null;
    while (offset < length) {
      let written: number;
      try {
        written = bytes === null ? writeSync(this.#fd, text) : writeSync(this.#fd, bytes, offset);
      } catch (error) {
        if (offset > 0) this.#midLine = true;
        throw error;
      }
      offset += written;
      this.#size += written;
      if (offset < length) bytes ??= Buffer.from(text);
    }
  }

  /**
   * Rotates before a line that would take the file past --log-max-size; true when the file was found
   * gone from its path instead. A rotation that fails keeps the line: it goes on into this file,
   * past the size, and one line on stderr says why (once, until a rotation succeeds).
   */
  #makeRoom(): boolean {
    try {
      const own = fstatSync(this.#fd);
      // Emptied since it was written (logrotate's copytruncate): counted from its size, not rotated.
      if (own.size < this.#size) {
        this.#size = own.size;
        return false;
      }
      const gone = !this.#holdsPath(own);
      this.rotate();
      this.#rotateFailed = null;
      return gone;
    } catch (error) {
      const why = oneLine(error);
      if (this.#rotateFailed === null) process.stderr.write(`clusterd: rotating ${this.path} failed: ${why}; lines go on into it, past --log-max-size\n`);
      this.#rotateFailed = why;
      return false;
    }
  }

  /** Whether the path still names the file this writes to (not removed, nor moved away and maybe replaced). */
  #holdsPath(own = fstatSync(this.#fd)): boolean {
    const named = statSync(this.path, { throwIfNoEntry: false });
    return named !== undefined && named.dev === own.dev && named.ino === own.ino;
  }

  /**
   * Opens the path again: after logrotate moved the file, lines go to a new one, with the old one's
   * mode; and so do the master's own stdout and stderr where they were on the old one. `fresh`: the
   * path was emptied by this rotation, so the file is created, never opened (O_EXCL); else a file
   * there (logrotate's `create`) is opened, if it is a regular file of this user's.
   */
  reopen({ fresh = false }: { fresh?: boolean } = {}): void {
    const mode = fstatSync(this.#fd).mode & 0o777;
    const fd = fresh ? createOwnFile(this.path, mode) : openOwnFile(this.path, mode);
    closeSync(this.#fd);
    this.#fd = fd;
    this.#size = fstatSync(fd).size;
    this.#midLine = false;
    this.#followedByStdio();
  }

  /**
   * Points the master's stdout and stderr that were on the old file at the new one. dup2 and not a
   * pipe the master reads: what matters most there is what the master writes as it dies (a crash's
   * stack, written by Node's C++ to fd 2 itself; a fatal out-of-memory), which nobody would read.
   */
  #followedByStdio(): void {
    const dup2 = nativeHelper()?.dup2;
    if (!dup2) return;
    for (const fd of this.#stdio) {
      const result = dup2(this.#fd, fd);
      if (result < 0) process.stderr.write(`clusterd: fd ${fd} stays on the old log file: dup2 failed (${errnoName(result)})\n`);
    }
  }

  /**
   * FILE.(k) -> FILE.(k+1) for the kept ones, FILE -> FILE.1, then a new FILE. Only while FILE is
   * still this file: once it was removed or moved away (rm; logrotate without its postrotate SIGUSR1)
   * there is nothing to move, and shifting the kept files would push the oldest out for nothing (at
   * every line, since the rename of FILE failed and the size never went down): the path is opened
   * anew instead, and the kept files stay as they are.
   */
  rotate(): void {
    const holds = this.#holdsPath();
    if (holds && this.#keep === 0) {
      // Emptied through its own descriptor: the path is never free, so nothing can be put there in
      // between (a removed file and a new one left a gap, and lines in a file no path names).
      ftruncateSync(this.#fd, 0);
      this.#size = 0;
      this.#midLine = false;
      return;
    }
    if (holds) {
      rmSync(`${this.path}.${this.#keep}`, { force: true });
      for (let index = this.#keep - 1; index >= 1; index--) {
        if (existsSync(`${this.path}.${index}`)) renameSync(`${this.path}.${index}`, `${this.path}.${index + 1}`);
      }
      renameSync(this.path, `${this.path}.1`);
    }
    this.reopen({ fresh: holds });
  }

  close(): void {
    try {
      closeSync(this.#fd);
    } catch {
      // Already closed: nothing is lost.
    }
  }
}

/**
 * Why `dir` lets anyone remove or rename the log files in it (writable by all, not sticky), or
 * null. Not refused: the checks above keep the master from writing elsewhere, but its lines may be
 * deleted or its rotated files replaced there.
 */
function openDirectory(dir: string): string | null {
  const mode = statSync(dir, { throwIfNoEntry: false })?.mode ?? 0;
  if ((mode & 0o002) === 0 || (mode & 0o1000) !== 0) return null;
  return `the directory ${dir} of the log file is writable by every user and not sticky (mode ${(mode & 0o7777).toString(8).padStart(4, '0')}): anyone may remove or replace the log and its rotated files; use a directory of this user's`;
}

/** Whether descriptors `a` and `b` are open on the same file (false for one that is closed). */
function sameFile(a: number, b: number): boolean {
  try {
    const [one, other] = [fstatSync(a), fstatSync(b)];
    return one.dev === other.dev && one.ino === other.ino;
  } catch {
    return false;
  }
}
