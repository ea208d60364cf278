// systemd socket activation (sd_listen_fds): started by systemd (a .socket unit) or by
// systemd-socket-activate, the master finds listening sockets at fds 3.. (LISTEN_FDS of them, for
// LISTEN_PID = this process; LISTEN_FDNAMES names them). An app's listen() on a matching address
// (or on a matching unix socket path) then gets the inherited socket instead of a new one, in every
// balance mode: systemd holds the
// socket across restarts of the master, so a restart (an upgrade of clusterd or Node) refuses no
// connection, they wait in the kernel's queue. The variables are removed from the environment once
// read, so that the workers (and their children) do not take the sockets for theirs. Their backlog
// (that queue: Backlog= in the .socket unit) is kept: see inheritedBacklog().
import { readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { MAX_SOCKET_PATH_BYTES, socketPathName, type ListenQuery, type SockName } from '../protocol.js';
import type { RawHandle } from './balancers/types.js';
import type { LogSink } from './logs.js';
import { nativeHelper } from '../system/native.js';
import { dropSystemdEnv, SOCKET_ACTIVATION_ENV } from '../system/systemd-env.js';
import { formatAddress } from '../address.js';

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
  /** What listen() is called with on it, in the master and in every worker: see inheritedBacklog(). */
  backlog: number;
}

/** The socket taken for a listen (takeInherited()). */
export interface TakenSocket {
  handle: RawHandle;
  sockname: SockName;
  backlog: number;
}

/** listen()'s backlog where a socket's own cannot be read: Linux (and the BSDs) cap it at net.core.somaxconn. */
const MOST_THE_KERNEL_ALLOWS = 2 ** 31 - 1;

interface InternalNet {
  _createServerHandle(address: string | null, port: number, addressType: number | undefined, fd: number): RawHandle | number;
}

export interface Activation {
  sockets: InheritedSocket[];
  /** Why some were not used (an fd that is not a listening socket, a unix socket of no path), one line each. */
  skipped: string[];
}

let adopted: InheritedSocket[] = [];

/** Reads LISTEN_PID / LISTEN_FDS / LISTEN_FDNAMES; null when they are not this process's. */
export function adoptActivatedSockets(env: NodeJS.ProcessEnv = process.env, pid = process.pid): Activation | null {
  const listenPid = env.LISTEN_PID;
  const listenFds = env.LISTEN_FDS;
  if (listenPid === undefined || listenFds === undefined) return null;
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  dropSystemdEnv(env, SOCKET_ACTIVATION_ENV);
  if (!/^\d+$/.test(listenPid) || Number(listenPid) !== pid) return null;
  const count = /^\d+$/.test(listenFds) ? Number(listenFds) : NaN;
  if (!(count >= 1 && count <= MAX_FDS)) return { sockets: [], skipped: [`LISTEN_FDS=${listenFds.slice(0, 20)} is not a count from 1 to ${MAX_FDS}: no socket adopted`] };
  const sockets: InheritedSocket[] = [];
  const skipped: string[] = [];
  // Read once for every descriptor (up to MAX_FDS of them).
  const tables = socketTables();
  for (let index = 0; index < count; index++) {
    const fd = FIRST_FD + index;
    const name = names[index] || 'unknown';
    // A LISTEN_FDS that counts more than was passed points at this process's own descriptors (libuv's
    // epoll and signal pipe, an IPC channel): wrapping one and closing it aborts the master. Only a
    // listening socket is touched.
    const listening = listeningSocket(fd, tables);
    if (listening !== true) {
      skipped.push(`fd ${fd} (${name}): ${listening === null ? 'not a socket' : 'a socket that is not listening'}, left alone`);
      continue;
    }
    const handle = (net as unknown as InternalNet)._createServerHandle(null, 0, undefined, fd);
    if (typeof handle === 'number') {
      skipped.push(`fd ${fd} (${name}): not a listening socket`);
      continue;
    }
    const out: Partial<SockName> = {};
    handle.getsockname?.(out);
    // Node's Pipe has no getsockname: a unix socket is found by its inode in /proc/net/unix.
    const sockname = typeof out.port === 'number' && typeof out.address === 'string' ? (out as SockName) : unixSocketName(fd, tables.unix);
    if (!sockname) {
      handle.close();
      skipped.push(`fd ${fd} (${name}): neither a TCP socket nor a unix socket with a path`);
      continue;
    }
    sockets.push({ fd, name, sockname, handle, backlog: inheritedBacklog(fd) });
  }
  adopted = sockets;
  return { sockets, skipped };
}

/**
 * The backlog to listen() with on a socket systemd passed. It listens already, with the backlog of
 * the .socket unit (Backlog=, the queue connections wait in while the master restarts), but libuv
 * starts accepting only through listen(2), which on Linux sets the backlog anew, for the socket
 * itself and so for systemd's copy too. The app's backlog (Node's default 511) cut a Backlog=4096
 * to 511 for good, past the master's exit. Its own backlog is read back where the native helper
 * can (a TCP socket); else it is the most the kernel allows, which never lowers it (the kernel
 * capped systemd's at the same net.core.somaxconn) but raises a Backlog= set below that.
 */
function inheritedBacklog(fd: number): number {
  const own = nativeHelper()?.listenBacklog?.(fd) ?? -1;
  return own > 0 ? own : MOST_THE_KERNEL_ALLOWS;
}

/** Linux's tables of this network namespace's sockets (empty where /proc cannot show them). */
interface SocketTables {
  tcp: string;
  unix: string;
}

function socketTables(): SocketTables {
  const read = (...paths: string[]): string =>
    paths
      .map((path) => {
        try {
          return readFileSync(path, 'utf8');
        } catch {
          return '';
        }
      })
      .join('\n');
  return { tcp: read('/proc/net/tcp', '/proc/net/tcp6'), unix: read('/proc/net/unix') };
}

/** The inode of the socket at `fd`, from /proc; null when `fd` is not a socket (or not open). */
function socketInode(fd: number): string | null {
  try {
    return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1] ?? null;
  } catch {
    return null;
  }
}

/**
 * Whether `fd` is a listening socket, read from Linux's /proc without touching the descriptor: a TCP
 * one in LISTEN state (0A), a unix one with __SO_ACCEPTCON (flags 00010000). Null: not a socket, or
 * none that /proc can show (then it is not taken for one).
 */
export function listeningSocket(fd: number, { tcp, unix }: SocketTables = socketTables()): boolean | null {
  const inode = socketInode(fd);
  if (inode === null) return null;
  // sl local_address rem_address st ... uid timeout inode
  for (const line of tcp.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[9] === inode) return fields[3] === '0A';
  }
  // Num RefCount Protocol Flags Type St Inode Path
  for (const line of unix.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[6] === inode) return fields[3] === '00010000';
  }
  return false;
}

/** The path a listening unix socket at `fd` is bound to (abstract: NUL first), from Linux's /proc; null if none. */
export function unixSocketName(fd: number, table?: string): SockName | null {
  const inode = socketInode(fd) ?? '';
  const lines = table ?? socketTables().unix;
  // Num RefCount Protocol Flags Type St Inode Path; an abstract name is shown as @name.
  for (const line of lines.split('\n')) {
    const [, found, path] = /^\s*\S+: (?:\S+ ){5}(\d+) (.+)$/.exec(line) ?? [];
    if (!inode || found !== inode || !path) continue;
    if (!path.startsWith('@')) return socketPathName(path);
    // An abstract name bound with the whole of sun_path (as Node 20 does) is padded with NULs, shown as @.
    const name = path.length === MAX_SOCKET_PATH_BYTES + 1 ? path.replace(/@+$/, '') : path;
    return socketPathName(`\0${name.slice(1)}`);
  }
  return null;
}

const WILDCARDS = new Set(['', '::', '0.0.0.0']);

/** Whether an app's listen(port, host), or listen(path), means the inherited socket's address. */
export function matches(query: Pick<ListenQuery, 'address' | 'port'>, sockname: SockName): boolean {
  if (query.port === -1) return sockname.port === -1 && query.address === sockname.address;
  if (query.port === 0 || query.port !== sockname.port) return false;
  const wanted = query.address ?? '';
  if (WILDCARDS.has(wanted) && WILDCARDS.has(sockname.address)) return true;
  return wanted === sockname.address || (wanted === 'localhost' && (sockname.address === '127.0.0.1' || sockname.address === '::1'));
}

/** The addresses of the sockets from systemd, taken by a listen() or not: the master holds them all. */
export function inheritedAddresses(): SockName[] {
  return adopted.map((socket) => socket.sockname);
}

/** The inherited socket for this listen, taken (null when there is none, or it is in use). */
export function takeInherited(query: Pick<ListenQuery, 'address' | 'port'>): TakenSocket | null {
  const socket = adopted.find((candidate) => candidate.handle !== null && matches(query, candidate.sockname));
  if (!socket) return null;
  const handle = socket.handle!;
  socket.handle = null;
  return { handle, sockname: socket.sockname, backlog: socket.backlog };
}

/**
 * Once the cluster is ready: a warning for each socket from systemd that no listen() took (a
 * ListenStream=8080 for an app on 3000). The kernel still completes its clients' connections, and
 * they wait in a queue nobody accepts from: a hang, not a refusal. The socket is kept open all the
 * same: systemd holds a copy of its own, so closing the master's would refuse nobody (the socket
 * listens on in systemd's hands), while kept it is there for a reload whose app listens on it, where
 * a socket of the app's own would find the address taken by systemd's.
 */
export function warnUnusedSockets(logs: LogSink, listening: readonly string[]): void {
  for (const socket of adopted) {
    if (socket.handle === null) continue;
    const address = formatAddress(socket.sockname);
    const instead = listening.length > 0 ? `the app listens on ${listening.join(', ')}` : 'the app listens on nothing';
    logs.event(
      'activation-unused',
      `the socket from systemd ${address} (fd ${socket.fd}, ${socket.name}) is not listened on (${instead}): its clients connect and wait unanswered; listen on ${address}, or change the socket unit's address (the socket is kept for a reload that does)`,
      { fd: socket.fd, name: socket.name, address, listening: [...listening] },
      'warn',
    );
  }
}
