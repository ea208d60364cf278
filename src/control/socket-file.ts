// A unix socket at a path the user chose (`--dashboard ./dash.sock`): owner-only from the moment its
// name appears (bound under a temporary name, chmod 0600, then link(2)ed to the path, which fails
// if the name is taken, as the control socket does in server.ts), a file left by a process that
// died is replaced, a live one or anything else at the path is refused.
import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';

/** sun_path holds 108 bytes on Linux, its terminating NUL included. */
export const MAX_SOCKET_PATH_BYTES = 107;
/** How long a probe of an existing socket file may take before it counts as answering. */
const PROBE_TIMEOUT_MS = 1000;

/**
 * Binds with `listen(temporary)`, then claims `path`; returns the socket's inode (close with
 * releaseSocketFile). Rejects with a one-line reason: in use, not a socket, no such directory.
 */
export async function claimSocketFile(path: string, listen: (temporary: string) => Promise<void>): Promise<number> {
  // Checked first: a bind under a missing directory fails with EACCES in Node, which misleads.
  let directory;
  try {
    directory = statSync(dirname(path));
  } catch {
    throw new Error(`no such directory`);
  }
  if (!directory.isDirectory()) throw new Error(`${dirname(path)} is not a directory`);
  await clearStale(path);
  const temporary = join(dirname(path), `.${randomBytes(6).toString('hex')}.sock`);
  if (Buffer.byteLength(temporary) > MAX_SOCKET_PATH_BYTES) throw new Error(`the path is too long for a unix socket here (${MAX_SOCKET_PATH_BYTES} bytes at most, with a temporary name beside it)`);
  await listen(temporary);
  try {
    // Mode before the name appears: no moment where the socket is reachable with a looser one.
    chmodSync(temporary, 0o600);
    try {
      linkSync(temporary, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new Error('address already in use');
      throw error;
    }
    return statSync(path).ino;
  } finally {
    try {
      unlinkSync(temporary);
    } catch {
      // Gone already.
    }
  }
}

/** Removes the socket file, if it is still the one claimed (a successor may have claimed the path). */
export function releaseSocketFile(path: string, inode: number): void {
  try {
    if (statSync(path).ino === inode) unlinkSync(path);
  } catch {
    // Already gone.
  }
}

async function clearStale(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!isSocket) throw new Error('the path exists and is not a socket');
  if (await answers(path)) throw new Error('address already in use');
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** True when something accepts connections on the unix socket `path` (or holds it past the probe's time). */
export function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (alive: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(alive);
    };
    // A listener whose process is stopped (SIGSTOP) accepts into its backlog; count it alive.
    const timer = setTimeout(() => done(true), PROBE_TIMEOUT_MS);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
