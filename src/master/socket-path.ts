// A unix socket file the master bound can be removed by the app: code written for one process
// often clears a stale socket before listening (`unlinkSync(path); server.listen(path)`), and in a
// cluster every worker runs it, after the master has bound the path for the first one. The socket
// itself lives on (the master holds it), but clients can no longer reach it by its name. A spare
// hard link beside it (`.<name>.clusterd`) keeps the file's inode, and linking it back to the path
// restores the name for the very same socket: no new socket, nothing for the workers to change.
import { existsSync, linkSync, lstatSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export class SparePath {
  readonly path: string;
  readonly #spare: string;

  private constructor(path: string, spare: string) {
    this.path = path;
    this.#spare = spare;
  }

  /**
   * Links `path` (a unix socket file the master has just bound) to its spare name; null when that
   * cannot be done (not a socket file, a directory the master may not write).
   */
  static keep(path: string): SparePath | null {
    const spare = join(dirname(path), `.${basename(path)}.clusterd`);
    try {
      if (!lstatSync(path).isSocket()) return null;
      // One left by a master that was killed: a stale socket file, nothing else is ever there.
      if (existsSync(spare) && lstatSync(spare).isSocket()) unlinkSync(spare);
      linkSync(path, spare);
      return new SparePath(path, spare);
    } catch {
      return null;
    }
  }

  /** Puts the path back when it is gone; true when it did. */
  restore(): boolean {
    if (existsSync(this.path)) return false;
    try {
      linkSync(this.#spare, this.path);
      return true;
    } catch {
      return false;
    }
  }

  /** Removes the spare name (the socket's own path is libuv's to remove when it closes). */
  remove(): void {
    try {
      unlinkSync(this.#spare);
    } catch {
      // Gone already.
    }
  }
}
