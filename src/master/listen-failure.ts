// A worker's failure to bind an address, in words: naming the master's own listener, or the socket
// from systemd, when it is the one that holds the address.
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { inheritedAddresses, matches } from './activation.js';
import type { ListenFailure } from './listeners.js';
import { isSocketPath, type SockName } from '../protocol.js';
import { formatAddress, hostsShareAddress, isLoopback, isWildcardHost } from '../address.js';

/** A listener of the master's own (`--health`, `--metrics`, `--control`, `--dashboard`), where it is bound. */
export type OwnListener = { flag: string } & Bound;

/** Where a listener of the master's is bound. */
type Bound = { host: string; port: number } | { path: string };

/** `inherited`: the sockets from systemd, which the master holds whether or not a listen() took them. */
export function describeListenFailure({ query, code, exclusive }: ListenFailure, own: readonly OwnListener[] = [], inherited: readonly SockName[] = inheritedAddresses()): string {
  const why =
    code === 'EADDRINUSE' ? 'address already in use' : code === 'EACCES' ? 'permission denied' : code === 'EADDRNOTAVAIL' ? 'address not available' : code;
  // The master's own listener holds the address only while the cluster runs: once it has exited
  // nothing does, and the line must say what held it.
  const holder = code === 'EADDRINUSE' ? own.find((listener) => holds(listener, query)) : undefined;
  const fromSystemd = code === 'EADDRINUSE' && !holder ? inherited.find((socket) => holds(bound(socket), query)) : undefined;
  const held = holder
    ? `: it is this cluster's own ${holder.flag} address`
    : fromSystemd
      ? `: ${systemdHint(fromSystemd, query, exclusive !== undefined)}`
      : exclusive && code === 'EADDRINUSE'
        ? `: ${exclusiveHint(exclusive.holder, isSocketPath(query) ? 'unix socket' : 'port')}`
        : '';
  if (isSocketPath(query)) {
    const path = query.address ?? '';
    // Node reports a bind under a missing directory as EACCES, which misleads.
    const missing = path.startsWith('/') && (code === 'EACCES' || code === 'ENOENT') && !existsSync(dirname(path));
    return `cannot listen on unix socket ${formatAddress({ address: path, port: -1 })}: ${missing ? `no such directory ${dirname(path)}` : `${why} (${code})${held}`}`;
  }
  return `cannot listen on port ${query.port} (${query.address ?? '*'}:${query.port}): ${why} (${code})${held}`;
}

/** The app's listen() has `exclusive: true`: each worker binds the address alone, so they collide. */
function exclusiveHint(holder: number | null, what: string): string {
  const held = holder === null ? '' : `worker ${holder} holds it: `;
  return `${held}the app listens with exclusive: true, so each worker binds the ${what} alone: more than one worker cannot, nor can a reload or restart (its new worker starts while the old one holds it); leave exclusive out to share it`;
}

/**
 * The socket from systemd holds the address, through the master (a listen() on another address
 * of its port does not match it, and binds a socket of its own): listen on its address instead.
 * With `exclusive: true` the worker binds a socket of its own whatever the address: that first.
 */
function systemdHint(socket: SockName, query: ListenFailure['query'], exclusive: boolean): string {
  const held = `it is the socket from systemd (${formatAddress(socket)}), which the master holds`;
  // As the master hands the socket out (activation.ts): a wildcard takes any wildcard.
  const sameAddress = socket.port === -1 || matches(query, socket);
  const listenThere = `listen on that same address${isWildcardHost(socket.address) ? ' (or on none: host omitted)' : ''}`;
  if (exclusive) return `${held}; the app listens with exclusive: true, which binds a socket of its own: leave exclusive out${sameAddress ? ' to take it' : `, and ${listenThere}`}`;
  return socket.port === -1 ? held : `${held}; ${listenThere}`;
}

function bound({ address, port }: SockName): Bound {
  return port === -1 ? { path: address } : { host: address, port };
}

/** Whether the master's listener takes the address a worker asked for: the same path, or the same port on an address that overlaps. */
function holds(listener: Bound, query: ListenFailure['query']): boolean {
  if ('path' in listener) return isSocketPath(query) && query.address === listener.path;
  if (isSocketPath(query) || query.port !== listener.port) return false;
  const { address } = query;
  return hostsShareAddress(address, listener.host) || (isLoopback(address!) && listener.host === 'localhost');
}
