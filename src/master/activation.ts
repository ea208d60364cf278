// systemd socket activation (sd_listen_fds): started by systemd (a .socket unit) or by
// systemd-socket-activate, the master finds listening sockets at fds 3.. (LISTEN_FDS of them, for
// LISTEN_PID = this process; LISTEN_FDNAMES names them). An app's listen() on a matching address
// then gets the inherited socket instead of a new one, in every balance mode: systemd holds the
// socket across restarts of the master, so a restart (an upgrade of clusterd or Node) refuses no
// connection, they wait in the kernel's queue. The variables are removed from the environment once
// read, so that the workers (and their children) do not take the sockets for theirs.
import net from 'node:net';
import type { ListenQuery, SockName } from '../protocol.js';
import type { RawHandle } from './balancers/types.js';

/** The first inherited descriptor (SD_LISTEN_FDS_START). */
const FIRST_FD = 3;
/** More than this many is not a socket unit but a mistake. */
const MAX_FDS = 256;

export interface InheritedSocket {
  fd: number;
  /** LISTEN_FDNAMES' entry for it (`unknown` without one). */
  name: string;
  sockname: SockName;
  /** Taken by a balancer: a socket serves one key at a time. */
  handle: RawHandle | null;
}

interface InternalNet {
  _createServerHandle(address: string | null, port: number, addressType: number | undefined, fd: number): RawHandle | number;
}

export interface Activation {
  sockets: InheritedSocket[];
  /** Why some were not used (a unix socket, an fd that is not a socket), one line each. */
  skipped: string[];
}

let adopted: InheritedSocket[] = [];

/** Reads LISTEN_PID / LISTEN_FDS / LISTEN_FDNAMES; null when they are not this process's. */
export function adoptActivatedSockets(env: NodeJS.ProcessEnv = process.env, pid = process.pid): Activation | null {
  const listenPid = env.LISTEN_PID;
  const listenFds = env.LISTEN_FDS;
  if (listenPid === undefined || listenFds === undefined) return null;
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  for (const name of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES']) delete env[name];
  if (!/^\d+$/.test(listenPid) || Number(listenPid) !== pid) return null;
  const count = /^\d+$/.test(listenFds) ? Number(listenFds) : NaN;
  if (!(count >= 1 && count <= MAX_FDS)) return { sockets: [], skipped: [`LISTEN_FDS=${listenFds.slice(0, 20)} is not a count from 1 to ${MAX_FDS}: no socket adopted`] };
  const sockets: InheritedSocket[] = [];
  const skipped: string[] = [];
  for (let index = 0; index < count; index++) {
    const fd = FIRST_FD + index;
    const name = names[index] || 'unknown';
    const handle = (net as unknown as InternalNet)._createServerHandle(null, 0, undefined, fd);
    if (typeof handle === 'number') {
      skipped.push(`fd ${fd} (${name}): not a listening socket`);
      continue;
    }
    const out: Partial<SockName> = {};
    handle.getsockname?.(out);
    if (typeof out.port !== 'number' || typeof out.address !== 'string') {
      // A unix socket (or another kind): an app's listen(path) is not matched to it yet.
      handle.close();
      skipped.push(`fd ${fd} (${name}): not a TCP socket`);
      continue;
    }
    sockets.push({ fd, name, sockname: out as SockName, handle });
  }
  adopted = sockets;
  return { sockets, skipped };
}

const WILDCARDS = new Set(['', '::', '0.0.0.0']);

/** Whether an app's listen(port, host) means the inherited socket's address. */
export function matches(query: Pick<ListenQuery, 'address' | 'port'>, sockname: SockName): boolean {
  if (query.port === 0 || query.port !== sockname.port) return false;
  const wanted = query.address ?? '';
  if (WILDCARDS.has(wanted) && WILDCARDS.has(sockname.address)) return true;
  return wanted === sockname.address || (wanted === 'localhost' && (sockname.address === '127.0.0.1' || sockname.address === '::1'));
}

/** The inherited socket for this listen, taken (null when there is none, or it is in use). */
export function takeInherited(query: Pick<ListenQuery, 'address' | 'port'>): { handle: RawHandle; sockname: SockName } | null {
  const socket = adopted.find((candidate) => candidate.handle !== null && matches(query, candidate.sockname));
  if (!socket) return null;
  const handle = socket.handle!;
  socket.handle = null;
  return { handle, sockname: socket.sockname };
}
