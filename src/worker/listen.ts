// Routes every listen() in the worker to the master, the way Node's own cluster child does.
//
// net.Server#listen already normalises its arguments, resolves host names, honours
// `exclusive`, and then calls `cluster._getServer(server, query, cb)` whenever
// `cluster.isPrimary` is false (lib/net.js listenInCluster). A process started with plain
// child_process.fork() is a "primary", so we flip that flag and install our own _getServer:
// http, https, tls, http2, express and fastify servers all get the cluster behaviour with
// no change to the app, and errors surface exactly as Node words them.
import cluster from 'node:cluster';
import dgram from 'node:dgram';
import net from 'node:net';
import { constants as osConstants } from 'node:os';
import { resolve } from 'node:path';
import { getSystemErrorMap } from 'node:util';
import { acceptorHandle, installAcceptorChannel, takeConnection } from './acceptor.js';
import * as channel from './channel.js';
import { atOwnLimit, datagramBound, standInSockname, traffic } from './servers.js';
import { isSocketPath, isUdp, listenBase, MAX_SOCKET_PATH_BYTES, type ListenQuery, type ListenReply, type NewConnection, type SockName } from '../protocol.js';

/** The libuv handle objects Node keeps in `server._handle`. */
export interface RawHandle {
  close(callback?: () => void): void;
  listen?(backlog: number): number;
  getsockname?(out: Partial<SockName>): number;
  ref?(): void;
  unref?(): void;
  onconnection?: ((status: number, handle: RawHandle) => void) | null;
}

type GetServerCallback = (errno: number, handle: RawHandle | null) => void;
interface ServerQuery {
  address: string | null;
  port: number;
  addressType: number | string;
  fd?: number;
  flags?: number;
  backlog?: number;
  readableAll?: boolean;
  writableAll?: boolean;
}

interface InternalNet {
  _createServerHandle(address: string | null, port: number, addressType: number, fd?: number, flags?: number): RawHandle | number;
}

interface RoundRobinEntry {
  server: net.Server;
  handle: RawHandle;
}

// UV_TCP_REUSEPORT (Node >= 22.12): such sockets are meant to be bound by each process itself.
const UV_TCP_REUSEPORT = 2;

const roundRobin = new Map<string, RoundRobinEntry>();
/** The stand-in listening handles given to Node's servers (`fair`, `rr`): plain objects, not libuv's. */
const standIns = new WeakSet<object>();
const indexes = new Map<string, Set<number>>();

/** Installs the hook; must run before the app's entry is loaded. */
export function installListenHook(): void {
  const clusterModule = cluster as unknown as Record<string, unknown>;
  clusterModule.isPrimary = false;
  clusterModule.isMaster = false;
  clusterModule._getServer = getServer;
  patchDgramBind();
  channel.on('NODE_clusterd:conn', onConnection);
  installAcceptorChannel();
  guardHandleSends();
}

/**
 * `process.send(message, server)` with a server listening through the master: Node would pass its
 * stand-in handle to libuv as if it were a socket, and the worker dies of SIGSEGV (node:cluster's
 * workers do the same). Refused instead, as Node refuses a handle it cannot send: a TypeError with
 * code ERR_INVALID_HANDLE_TYPE, thrown at the call.
 */
function guardHandleSends(): void {
  const send = process.send;
  if (!send) return;
  process.send = function (this: NodeJS.Process, ...args: unknown[]): boolean {
    const handle = args[1] as { _handle?: unknown } | null | undefined;
    if (typeof handle === 'object' && handle !== null && (standIns.has(handle) || (typeof handle._handle === 'object' && handle._handle !== null && standIns.has(handle._handle)))) {
      throw Object.assign(
        new TypeError('clusterd: this server listens through the clusterd master, which shares its socket with every worker; it cannot be sent to another process (listen in that process instead)'),
        { code: 'ERR_INVALID_HANDLE_TYPE' },
      );
    }
    // The app's 'ready' (--wait-ready): from now on the worker lives as the master's, as when it listens.
    if (args[0] === 'ready') channel.hold();
    return (send as (...args: unknown[]) => boolean).apply(this, args);
  } as typeof process.send;
}

function getServer(server: net.Server, query: ServerQuery, callback: GetServerCallback): void {
  const udp = isUdp(query);
  // Inherited fds and SO_REUSEPORT sockets keep their normal meaning: the worker binds them itself.
  const isFd = typeof query.fd === 'number' && query.fd >= 0;
  if (!udp && (isFd || ((query.flags ?? 0) & UV_TCP_REUSEPORT) !== 0)) {
    const handle = (net as unknown as InternalNet)._createServerHandle(
      query.address,
      query.port,
      query.addressType as number,
      query.fd,
      query.flags,
    );
    if (typeof handle === 'number') callback(handle, null);
    else callback(0, handle);
    return;
  }

  // A unix socket path is bound by the master, as node:cluster does, so that every worker shares it;
  // a relative one means this worker's directory, which the master's may not be.
  const unix = isSocketPath(query);
  const path = unix && query.address !== null && !query.address.startsWith('\0') ? resolve(query.address) : query.address;
  // Longer than sun_path: Node 20 would bind a truncated name, and the master refuses to; the app's
  // listen fails at once with the reason (as on Node 22+), not after --listen-timeout.
  if (unix && Buffer.byteLength(path ?? '') > MAX_SOCKET_PATH_BYTES) {
    callback(-osConstants.errno.ENAMETOOLONG, null);
    return;
  }
  const base = listenBase({ address: path, port: query.port, addressType: query.addressType });
  const index = takeIndex(base);
  const key = `${base}:${index}`;
  // UDP: a datagram socket on a fixed port, which the master binds once for every worker (patchDgramBind).
  const message: ListenQuery = udp
    ? { key, address: path, port: query.port, addressType: query.addressType, flags: query.flags ?? 0 }
    : {
        key,
        address: path,
        port: query.port,
        addressType: query.addressType,
        fd: query.fd,
        flags: query.flags ?? 0,
        backlog: query.backlog,
      };
  if (unix) {
    if (query.readableAll === true) message.readableAll = true;
    if (query.writableAll === true) message.writableAll = true;
  }
  const listeningId = (server as { _listeningId?: number })._listeningId;
  channel.request<ListenReply>({ cmd: 'NODE_clusterd:listen', query: message }, (reply, handle) => {
    if (reply.errno !== 0) {
      releaseIndex(base, index);
      // Node words a cluster worker's failure `bind EADDRINUSE null:3000` (the host it was given,
      // none); the app sees the error a process of its own gets: `listen EADDRINUSE: address already
      // in use :::3000`. Emitted here as Node would, unless the server listened anew meanwhile.
      if (udp) callback(reply.errno, null);
      else if ((server as { _listeningId?: number })._listeningId === listeningId) server.emit('error', listenError(reply.errno, path, query.port, unix));
      return;
    }
    if (reply.mode === 'reuseport') {
      // The master holds the port; this worker listens on a socket of its own in the same group.
      const own = (net as unknown as InternalNet)._createServerHandle(
        query.address,
        reply.sockname!.port,
        query.addressType as number,
        undefined,
        (query.flags ?? 0) | UV_TCP_REUSEPORT,
      );
      if (typeof own === 'number') {
        releaseIndex(base, index);
        callback(own, null);
        return;
      }
      callback(0, tellMasterOnClose(own, key, () => releaseIndex(base, index)));
      return;
    }
    if (reply.mode === 'fair') {
      const standIn = acceptorHandle(server, key, reply.sockname, handle as RawHandle, () => releaseIndex(base, index), reply.backlog);
      standIns.add(standIn);
      callback(0, standIn);
      return;
    }
    if (reply.mode === 'shared') {
      // A UDP socket counts as listening until it closes (servers.ts: an app that serves only UDP).
      const unbound = udp ? datagramBound() : undefined;
      callback(
        0,
        tellMasterOnClose(withBacklog(handle as RawHandle, reply.backlog), key, () => {
          releaseIndex(base, index);
          unbound?.();
        }),
      );
      return;
    }
    callback(0, roundRobinHandle(server, key, reply.sockname, () => releaseIndex(base, index)));
  });
}

/**
 * The error of a listen() that failed, as Node makes it in a process that binds its own socket
 * (lib/net.js setupListenHandle): syscall `listen`, and the address it listened on, `::` for none.
 */
function listenError(errno: number, address: string | null, port: number, unix: boolean): NodeJS.ErrnoException {
  const [code, description] = getSystemErrorMap().get(errno) ?? [`Unknown system error ${errno}`, 'unknown error'];
  const host = address ?? '::';
  const error = new Error(`listen ${code}: ${description} ${unix ? host : `${host}:${port}`}`) as NodeJS.ErrnoException & { address: string; port?: number };
  Object.assign(error, { errno, code, syscall: 'listen', address: host }, unix ? {} : { port });
  return error;
}

/**
 * A socket systemd passed (the master says so with its backlog): Node's listen() on it uses that
 * backlog, not the app's, which would lower the socket's own for every copy, systemd's too.
 */
function withBacklog(handle: RawHandle, backlog: number | undefined): RawHandle {
  if (backlog === undefined || !handle.listen) return handle;
  const listen = handle.listen.bind(handle);
  handle.listen = () => listen(backlog);
  return handle;
}

/** A listening socket of the worker's own whose close() also tells the master. */
function tellMasterOnClose(handle: RawHandle, key: string, release: () => void): RawHandle {
  const close = handle.close.bind(handle);
  handle.close = (done) => {
    release();
    channel.send({ cmd: 'NODE_clusterd:close', key });
    close(done);
  };
  return handle;
}

/** A stand-in listening handle: the master accepts, and hands each connection to onconnection. */
function roundRobinHandle(server: net.Server, key: string, sockname: SockName | null, release: () => void): RawHandle {
  // Like a real listening socket, the handle keeps the process alive until closed or unref'd.
  let keepAlive: NodeJS.Timeout | null = null;
  const ref = (): void => {
    keepAlive ??= setInterval(() => {}, 2 ** 31 - 1);
  };
  const unref = (): void => {
    if (keepAlive) clearInterval(keepAlive);
    keepAlive = null;
  };
  let open = true;
  const handle: RawHandle = {
    listen: () => 0,
    getsockname: standInSockname(sockname, () => open),
    ref,
    unref,
    close(done) {
      if (!open) return;
      open = false;
      unref();
      roundRobin.delete(key);
      release();
      channel.send({ cmd: 'NODE_clusterd:close', key });
      if (done) process.nextTick(done);
    },
  };
  ref();
  roundRobin.set(key, { server, handle });
  standIns.add(handle);
  return handle;
}

function onConnection(message: NewConnection, raw: unknown): void {
  const connection = raw as RawHandle;
  if (!roundRobin.has(message.key)) {
    // fair: a connection the master accepted from the queue at a stop (an unknown key: refused).
    const accepted = takeConnection(message.key, connection);
    channel.send({ cmd: 'NODE_clusterd:ack', key: message.key, id: message.id, accepted, connections: traffic.connections + (accepted ? 1 : 0) });
    if (!accepted) connection.close();
    return;
  }
  const entry = roundRobin.get(message.key);
  const server = entry?.server as (net.Server & { _connections: number }) | undefined;
  // Refuse rather than drop: a refused connection goes back to the master for another worker.
  const accepted =
    entry !== undefined &&
    entry.handle.onconnection !== undefined &&
    !atOwnLimit(server!);
  channel.send({ cmd: 'NODE_clusterd:ack', key: message.key, id: message.id, accepted, connections: traffic.connections + (accepted ? 1 : 0) });
  if (accepted) entry.handle.onconnection!(0, connection);
  else connection.close();
}

function takeIndex(base: string): number {
  let used = indexes.get(base);
  if (!used) indexes.set(base, (used = new Set()));
  let index = 0;
  while (used.has(index)) index++;
  used.add(index);
  return index;
}

function releaseIndex(base: string, index: number): void {
  const used = indexes.get(base);
  used?.delete(index);
  if (used?.size === 0) indexes.delete(base);
}

/**
 * dgram sockets also consult cluster._getServer. One on a fixed port is bound by the master, which
 * gives every worker a copy, as node:cluster's primary does (its SharedHandle): each datagram goes
 * to one of them, and the port stays bound while workers come and go. Bound by each worker, the
 * second worker's bind failed with EADDRINUSE, and so did a replacement's while the worker it
 * replaced still held the port: after every other restart or reload nothing received on it.
 *
 * Any other stays the worker's own, as in a standalone process (`exclusive: true`): port 0 (the
 * socket a client sends from: shared, a reply would reach whichever worker read it first, where
 * node:cluster shares it), an fd, the app's own `exclusive: true`, and `reusePort`.
 */
function patchDgramBind(): void {
  const bind = dgram.Socket.prototype.bind as (...args: unknown[]) => dgram.Socket;
  const own = (port: unknown): boolean => !(Number.isInteger(Number(port)) && Number(port) > 0);
  dgram.Socket.prototype.bind = function (this: dgram.Socket, ...args: unknown[]): dgram.Socket {
    const [first] = args;
    if (first !== null && typeof first === 'object') {
      const options = first as { port?: unknown; fd?: unknown; recvStart?: unknown };
      // A handle (a socket sent over IPC is bound to one as it arrives): nothing to bind.
      if (typeof options.recvStart === 'function') return bind.apply(this, args);
      if (own(options.port) || options.fd !== undefined) args[0] = { ...options, exclusive: true };
    } else if (own(first)) {
      const callback = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
      const [port, address] = args as [number | undefined, string | undefined];
      args = [{ port, address, exclusive: true }];
      if (callback) args.push(callback);
    }
    return bind.apply(this, args);
  } as typeof dgram.Socket.prototype.bind;
}
