// Reading a small file that a worker named: a script's file (a `//# sourceURL=` can name any path) or
// its source map (function-entry.ts, source-map.ts). The worker is not trusted code, so the path may be
// a device, a FIFO or a terminal, where open() itself can act: /dev/watchdog arms a watchdog, and a
// master that is a session leader without a terminal (as `start -d` makes it) takes a terminal it opens
// as its controlling one unless O_NOCTTY says not. So the path is stat()ed first and only a regular file
// is opened; the flags guard what may be swapped in between (O_NONBLOCK: a FIFO does not wait for a
// writer), and the file's fstat after open must be the one stat()ed.
// The worker's runtime loads source-map.ts, so this module imports nothing outside Node.
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { open as openPath, stat, type FileHandle } from 'node:fs/promises';

/** How a file a worker named is opened (O_NOCTTY is 0 where the platform has none). */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | (constants.O_NOCTTY ?? 0);

/** Opens a path with flags: fs.promises.open, or a test's stand-in that counts opens. */
export type OpenFile = (path: string, flags: number) => Promise<FileHandle>;

/** Whether stats are of a regular file of at most maxBytes. */
function small(stats: Stats, maxBytes: number): boolean {
  return stats.isFile() && stats.size <= maxBytes;
}

/** Whether two stats are of one file, unchanged: the one stat()ed before the open is the one opened. */
function sameFile(named: Stats, opened: Stats): boolean {
  return named.dev === opened.dev && named.ino === opened.ino && named.size === opened.size && named.mtimeMs === opened.mtimeMs;
}

/** The stats of the regular file at `path` when it is at most maxBytes, else null; throws where stat() does. */
export async function smallFileStats(path: string, maxBytes: number): Promise<Stats | null> {
  const stats = await stat(path);
  return small(stats, maxBytes) ? stats : null;
}

/** The file at `path`, opened, when it is still the file `named` (from smallFileStats), else null. */
export async function openSmallFile(path: string, named: Stats, { open = openPath }: { open?: OpenFile } = {}): Promise<FileHandle | null> {
  const file = await open(path, OPEN_FLAGS);
  try {
    if (sameFile(named, await file.stat())) return file;
  } catch {
    // Unreadable stats: refused, as a different file.
  }
  await file.close();
  return null;
}

/** A regular file's text when it is at most maxBytes, else null; throws where stat() or open() does. Synchronous, for source-map.ts. */
export function readSmallFileSync(path: string, maxBytes: number): string | null {
  const named = statSync(path);
  if (!small(named, maxBytes)) return null;
  const fd = openSync(path, OPEN_FLAGS);
  try {
    if (!sameFile(named, fstatSync(fd))) return null;
    const buffer = Buffer.alloc(named.size);
    let read = 0;
    while (read < buffer.length) {
      const bytes = readSync(fd, buffer, read, buffer.length - read, read);
      if (bytes === 0) break;
      read += bytes;
    }
    return buffer.toString('utf8', 0, read);
  } finally {
    closeSync(fd);
  }
}
