// Claiming a unix socket's path: the control socket (`<runtime dir>/<name>.sock`, server.ts) and one
// the user chose (`--dashboard ./dash.sock`). Owner-only from the moment its name appears: bound on
// a private temporary name, chmod 0600, then link(2)ed to the path. link fails with EEXIST if the
// name exists, so of two processes claiming one path at the same moment exactly one wins, and a
// client never sees a socket file before it answers. A file left by a process that died (nobody
// answers on it) is replaced; a live one or anything else at the path is refused. What remains
// racy is two processes both removing the same stale file at once; the loser then finds the
// winner answering and is refused like any duplicate.
import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';

import { MAX_SOCKET_PATH_BYTES } from '../protocol.js';

export { MAX_SOCKET_PATH_BYTES };
/** How long a probe of an existing socket file may take before it counts as answering. */
export const PROBE_TIMEOUT_MS = 1000;

/** Why a socket path cannot be claimed: something else is there, a live socket, or a rival won the link. */
export type SocketFileConflict = 'not-a-socket' | 'answers' | 'claimed';

export class SocketFileTaken extends Error {
  readonly conflict: SocketFileConflict;

  constructor(conflict: SocketFileConflict) {
    super(conflict === 'not-a-socket' ? 'the path exists and is not a socket' : 'address already in use');
    this.conflict = conflict;
  }
}

/**
 * Binds with `listen(temporary)`, then claims `path`; returns the socket's inode (close with
 * releaseSocketFile). A socket file nobody answers on (left by a process that died) is replaced.
 * Rejects with a SocketFileTaken when the path is taken, or an Error with a one-line reason (no
 * such directory, too long a path), or whatever `listen` rejects with.
 */
export async function claimSocketFile(path: string, listen: (temporary: string) => Promise<unknown>): Promise<number> {
  // Checked first: a bind under a missing directory fails with EACCES in Node, which misleads.
  let directory;
  try {
    directory = statSync(dirname(path));
  } catch {
    throw new Error(`no such directory`);
  }
  if (!directory.isDirectory()) throw new Error(`${dirname(path)} is not a directory`);
  await clearStale(path);
  // A dot name: never mistaken for a cluster by listClusters.
  const temporary = join(dirname(path), `.${process.pid}-${randomBytes(4).toString('hex')}.sock`);
  if (Buffer.byteLength(temporary) > MAX_SOCKET_PATH_BYTES) throw new Error(`the path is too long for a unix socket here (${MAX_SOCKET_PATH_BYTES} bytes at most, with a temporary name beside it)`);
  await listen(temporary);
  try {
    // Mode before the name appears: no moment where the socket is reachable with a looser one.
    chmodSync(temporary, 0o600);
    try {
      linkSync(temporary, path);
    } catch (error) {
      // Another process claimed the name between the check and now.
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new SocketFileTaken('claimed');
      throw error;
    }
    return statSync(path).ino;
  } finally {
    try {
      unlinkSync(temporary);
    } catch {
      // Gone already (the server's own close would remove it too).
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
  const conflict = await removeStaleSocket(path);
  if (conflict !== null) throw new SocketFileTaken(conflict);
}

/**
 * Removes the unix socket file at `path` when nobody answers on it (its process died before it could
 * remove it, as Puma checks too); null once the path is free, else what stands there.
 */
export async function removeStaleSocket(path: string): Promise<'not-a-socket' | 'answers' | null> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  if (!isSocket) return 'not-a-socket';
  if (await answers(path)) return 'answers';
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return null;
}

/**
 * True when something accepts connections on the unix socket `path` (or holds it past the probe's
 * time): false only when a connection is refused (nobody listens) or the file is gone. A full queue
 * (EAGAIN) or a socket this user may not use (EACCES) has a live owner.
 */
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
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code !== 'ECONNREFUSED' && error.code !== 'ENOENT'));
  });
}
