// A listen with `exclusive: true` is bound by the worker itself: Node's listenInCluster calls
// server._listen2 for it and never asks cluster._getServer (src/worker/listen.ts), so the master would
// not know of it. On a fixed port or a unix socket path that matters: each worker binds its own
// socket, and a second worker, or a reload's new worker while the old one holds it, fails with
// EADDRINUSE. The worker tells the master where it listens, or why it could not, so that the master
// can say so, list the address, and name the port and the cause when a boot fails on it.
import { resolve } from 'node:path';
import type net from 'node:net';
import * as channel from './channel.js';
import { MAX_SOCKET_PATH_BYTES, OWN_LISTEN_HOST, socketPathName, type SockName } from '../protocol.js';

/** What the app asked for: a host (null: none) and a port, or a unix socket path and port -1. */
export interface ExclusiveTarget {
  address: string | null;
  port: number;
}

interface ListenOptions {
  exclusive?: unknown;
  port?: unknown;
  host?: unknown;
  path?: unknown;
  fd?: unknown;
  reusePort?: unknown;
  _handle?: unknown;
}

/**
 * The address of a listen() with `exclusive: true` on a fixed port or a unix socket path, from its
 * arguments as Node reads them (lib/net.js Server#listen: only an options object carries `exclusive`);
 * null for any other listen. Port 0 gives each worker a port of its own, where nothing collides, and
 * `reusePort` lets the kernel share the port: neither is reported.
 */
export function exclusiveTarget(args: readonly unknown[]): ExclusiveTarget | null {
  const [first] = args;
  if (typeof first !== 'object' || first === null || Array.isArray(first)) return null;
  const options = first as ListenOptions;
  // Node reads it as !!exclusive; a handle or an fd is the worker's own whatever it says.
  if (!options.exclusive || options._handle !== undefined || options.fd !== undefined || options.reusePort === true) return null;
  if (typeof options.port === 'number' || typeof options.port === 'string') {
    const port = Number(options.port);
    if (!Number.isInteger(port) || port <= 0 || port > 65535) return null;
    const host = typeof options.host === 'string' && options.host !== '' ? options.host : null;
    // Only a host the master takes (OWN_LISTEN_HOST): another would be refused as malformed, the app blamed for clusterd's own message.
    return host === null || OWN_LISTEN_HOST.test(host) ? { address: host, port } : null;
  }
  if (options.port === undefined && typeof options.path === 'string' && options.path !== '') {
    // As the master shows every unix socket: absolute, or abstract (a leading NUL).
    const path = options.path.startsWith('\0') ? options.path : resolve(options.path);
    // Past sun_path's bytes libuv binds the path cut short, which the master could not list as it is
    // (it refuses such a message as malformed, blaming the app for clusterd's own): not reported.
    return Buffer.byteLength(path) <= MAX_SOCKET_PATH_BYTES ? { address: path, port: -1 } : null;
  }
  return null;
}

let lastId = 0;

/** Tells the master how the exclusive listen on `target` went: where it listens (and, later, that it closed), or its error. */
export function reportExclusive(server: net.Server, target: ExclusiveTarget, error: unknown): void {
  const id = ++lastId;
  if (!server.listening) {
    const { code, errno, syscall } = (error ?? {}) as { code?: unknown; errno?: unknown; syscall?: unknown };
    // Only the bind's own failure (Node says `listen`); a host name that did not resolve never reached it.
    if (syscall !== 'listen' && syscall !== 'bind') return;
    const failed = { code: typeof code === 'string' ? code.slice(0, 50) : 'UNKNOWN', errno: typeof errno === 'number' && Number.isInteger(errno) ? errno : -1 };
    channel.send({ cmd: 'NODE_clusterd:own-listen', id, ...target, sockname: null, error: failed });
    return;
  }
  channel.send({ cmd: 'NODE_clusterd:own-listen', id, ...target, sockname: socknameOf(server, target), error: null });
  server.once('close', () => channel.send({ cmd: 'NODE_clusterd:own-close', id }));
}

function socknameOf(server: net.Server, target: ExclusiveTarget): SockName {
  const address = server.address();
  if (address !== null && typeof address === 'object') return { address: address.address, family: address.family, port: address.port };
  return socketPathName(target.address ?? '');
}
