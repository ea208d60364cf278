import dgram from 'node:dgram';
import net from 'node:net';
import { constants as osConstants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import { isSocketPath, socketPathName, type ListenQuery, type ListenReply, type SockName } from '../../protocol.js';
import type { RawHandle } from './types.js';
import { takeInherited } from '../activation.js';
import { nativeHelper } from '../../system/native.js';

/** libuv's flag for a TCP bind with ipv6Only: a `::` that takes no IPv4. */
export const UV_TCP_IPV6ONLY = 1;
/** libuv's uv_pipe_chmod flags (Node's PipeConstants). */
const UV_READABLE = 1;
const UV_WRITABLE = 2;

interface InternalNet {
  _createServerHandle(address: string | null, port: number, addressType: number, fd?: number, flags?: number): RawHandle | (RawHandle & PipeHandle) | number;
}

/** A unix socket server handle (Node's Pipe). */
interface PipeHandle {
  fchmod?(mode: number): number;
}

/** A listen failure carrying libuv's negative errno, which the worker turns into Node's error. */
export class BindError extends Error {
  constructor(
    readonly errno: number,
    readonly code: string,
  ) {
    super(`bind ${code}`);
  }
}

/**
 * Binds and listens in the master, then takes the raw handle away from its net.Server so the
 * master only ever accepts and hands off (Node's RoundRobinHandle does the same).
 */
export function listenRaw(query: ListenQuery): Promise<{ handle: RawHandle; sockname: SockName }> {
  // Socket activation: the socket systemd passed, already bound and listening; listen() starts
  // accepting, with the socket's own backlog rather than the app's (inheritedBacklog()).
  const inherited = takeInherited(query);
  if (inherited) {
    const error = inherited.handle.listen?.(inherited.backlog) ?? 0;
    if (error !== 0) return Promise.reject(new BindError(error, errorName(error)));
    return Promise.resolve({ handle: inherited.handle, sockname: inherited.sockname });
  }
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(new BindError(typeof error.errno === 'number' ? error.errno : -1, error.code ?? 'UNKNOWN'));
    });
    server.once('listening', () => {
      const address = server.address();
      const sockname = typeof address === 'string' ? socketPathName(address) : (address as SockName);
      const internal = server as unknown as { _handle: RawHandle | null };
      const handle = internal._handle!;
      internal._handle = null;
      resolve({ handle, sockname });
    });
    if (isSocketPath(query)) {
      server.listen({ path: query.address!, backlog: query.backlog, readableAll: query.readableAll, writableAll: query.writableAll });
      return;
    }
    server.listen({
      port: query.port,
      host: query.address ?? undefined,
      backlog: query.backlog,
      ipv6Only: (query.flags & UV_TCP_IPV6ONLY) !== 0,
    });
  });
}

/** A successful listen's reply for a socket workers listen on themselves; `inheritedBacklog` (systemd's socket) goes with it. */
export function heldSocketReply(seq: number, mode: 'shared' | 'reuseport' | 'fair', sockname: SockName, inheritedBacklog: number | null): ListenReply {
  const reply: ListenReply = { cmd: 'NODE_clusterd:listen-reply', seq, errno: 0, mode, sockname };
  if (inheritedBacklog !== null) reply.backlog = inheritedBacklog;
  return reply;
}

/**
 * Binds without listening, so that every worker can listen (and accept) on a copy. `inheritedBacklog`:
 * the socket is one systemd passed, to be listened on with that backlog only; null for one of its own.
 */
export function bindShared(query: ListenQuery): { handle: RawHandle; sockname: SockName; inheritedBacklog: number | null } {
  const inherited = takeInherited(query);
  if (inherited) return { handle: inherited.handle, sockname: inherited.sockname, inheritedBacklog: inherited.backlog };
  const handle = (net as unknown as InternalNet)._createServerHandle(
    query.address,
    query.port,
    query.addressType as number,
    query.fd,
    query.flags,
  );
  if (typeof handle === 'number') throw new BindError(handle, errorName(handle));
  if (isSocketPath(query)) {
    const mode = (query.readableAll === true ? UV_READABLE : 0) | (query.writableAll === true ? UV_WRITABLE : 0);
    const error = mode === 0 ? 0 : ((handle as PipeHandle).fchmod?.(mode) ?? 0);
    if (error !== 0) {
      handle.close();
      throw new BindError(error, errorName(error));
    }
    return { handle, sockname: socketPathName(query.address!), inheritedBacklog: null };
  }
  const sockname: Partial<SockName> = {};
  handle.getsockname?.(sockname);
  // libuv reports a port another process listens on only at listen(); the socket is then left
  // unbound, so its port differs from the one asked for (Node's checkBindError does the same).
  if (query.port > 0 && sockname.port !== query.port) {
    handle.close();
    throw new BindError(-osConstants.errno.EADDRINUSE, 'EADDRINUSE');
  }
  return { handle, sockname: sockname as SockName, inheritedBacklog: null };
}

interface InternalDgram {
  _createSocketHandle(address: string, port: number, addressType: string, fd?: number, flags?: number): RawHandle | number;
}

/**
 * Binds a UDP socket in the master, for every worker to receive on a copy (node:cluster's primary
 * does the same, with the same call). `dgram._createSocketHandle` is deprecated for apps (DEP0112):
 * the warning is kept out of the master's output, whose own code this is.
 */
export function bindUdp(query: ListenQuery): { handle: RawHandle; sockname: SockName } {
  const quiet = process.noDeprecation;
  process.noDeprecation = true;
  let handle: RawHandle | number;
  try {
    handle = (dgram as unknown as InternalDgram)._createSocketHandle(query.address ?? '', query.port, String(query.addressType), undefined, query.flags);
  } finally {
    process.noDeprecation = quiet;
  }
  if (typeof handle === 'number') throw new BindError(handle, errorName(handle));
  const sockname: Partial<SockName> = {};
  handle.getsockname?.(sockname);
  return { handle, sockname: sockname as SockName };
}

function errorName(errno: number): string {
  try {
    return getSystemErrorName(errno);
  } catch {
    return 'UNKNOWN';
  }
}

/**
 * Stops listening on a socket that workers hold copies of, for all of them (shutdown(SHUT_RD), on
 * Linux through the native helper): new connections are refused, as when the last copy closes,
 * though a worker whose loop is blocked has not closed its own yet. Closing the master's copy alone
 * left the socket listening for that worker, and the connections that came meanwhile completed their
 * handshake, sent their request, and were reset once it closed. The connections still queued are
 * reset: take them first. Never for a socket systemd passed (socket activation): it holds it for the
 * next start, and it would no longer listen. False where it cannot be done.
 */
export function stopListening(handle: RawHandle): boolean {
  const stop = nativeHelper()?.stopListening;
  if (!stop || typeof handle.fd !== 'number' || handle.fd < 0 || process.platform !== 'linux') return false;
  return stop(handle.fd) === 0;
}
