// --log-file: the master's and workers' lines go to a file instead of stdout/stderr. Written with
// one synchronous append per line, as to stdio: lines are whole, in order, and nothing is queued
// when the master exits. SIGUSR1 reopens the file (logrotate's `postrotate kill -USR1`, after it
// moved the file away); --log-max-size rotates it here, keeping --log-keep old files (FILE.1 is the
// newest).
import { closeSync, existsSync, fstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { UsageError, oneLine } from '../errors.js';
import type { OutputStream } from './logs.js';

/** The most old files --log-keep may ask for. */
export const MAX_LOG_KEEP = 100;

export interface LogFileOptions {
  path: string;
  /** Rotate before a write would take the file past this many bytes; null: never. */
  maxSize: number | null;
  /** Rotated files kept (FILE.1 .. FILE.keep); 0: the file is emptied instead. */
  keep: number;
}

export class LogFile implements OutputStream {
  readonly path: string;
  readonly #maxSize: number | null;
  readonly #keep: number;
  #fd: number;
  #size: number;
  /** Why the last write failed, once (the next success clears it). */
  #failing = false;

  constructor({ path, maxSize, keep }: LogFileOptions) {
    this.path = path;
    this.#maxSize = maxSize;
    this.#keep = keep;
    try {
      this.#fd = openSync(path, 'a', 0o640);
    } catch (error) {
      throw new UsageError(`--log-file: cannot open ${path}: ${oneLine(error)}`);
    }
    this.#size = fstatSync(this.#fd).size;
  }

  write(text: string): void {
    const bytes = Buffer.byteLength(text);
    try {
      if (this.#maxSize !== null && this.#size > 0 && this.#size + bytes > this.#maxSize) this.rotate();
      writeSync(this.#fd, text);
      this.#size += bytes;
      this.#failing = false;
    } catch (error) {
      // A full disk or a removed directory must not take the cluster down; say it once on stderr.
      if (!this.#failing) process.stderr.write(`clusterd: writing ${this.path} failed: ${oneLine(error)}\n`);
      this.#failing = true;
    }
  }

  /** Opens the path again: after logrotate moved the file, lines go to a new one. */
  reopen(): void {
    const fd = openSync(this.path, 'a', 0o640);
    closeSync(this.#fd);
    this.#fd = fd;
    this.#size = fstatSync(fd).size;
  }

  /** FILE.(k) -> FILE.(k+1) for the kept ones, FILE -> FILE.1, then a new FILE. */
  rotate(): void {
    if (this.#keep === 0) {
      rmSync(this.path, { force: true });
    } else {
      rmSync(`${this.path}.${this.#keep}`, { force: true });
      for (let index = this.#keep - 1; index >= 1; index--) {
        if (existsSync(`${this.path}.${index}`)) renameSync(`${this.path}.${index}`, `${this.path}.${index + 1}`);
      }
      renameSync(this.path, `${this.path}.1`);
    }
    this.reopen();
  }

  close(): void {
    try {
      closeSync(this.#fd);
    } catch {
      // Already closed: nothing is lost.
    }
  }
}
