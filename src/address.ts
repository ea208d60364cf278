// Addresses as people read them, for every part of clusterd (the master's lines, the worker runtime,
// the dashboard): pure functions of their arguments.

/** `host:port`, with brackets around IPv6 addresses; a unix socket (port -1) by its path (`@name` if abstract). */
export function formatAddress({ address, port }: { address: string; port: number }): string {
  if (port < 0) return address.startsWith('\0') ? `@${address.slice(1)}` : address;
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * A loopback name or address, however it is written: 127.0.0.1, 127.1, 127.0.0.2, ::1,
 * [0:0:0:0:0:0:0:1], ::ffff:127.0.0.1, localhost (bound as typed, each of them listens on loopback).
 */
export function isLoopback(host: string): boolean {
  const bracketed = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  let name: string;
  try {
    name = new URL(`http://${bracketed}/`).hostname.toLowerCase();
  } catch {
    return false;
  }
  return name === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(name) || name === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(name);
}

/** A host that takes every address of the port: none given (null, or '' as Node reads it), 0.0.0.0 or ::. */
export function isWildcardHost(host: string | null): boolean {
  return host === null || host === '' || host === '0.0.0.0' || host === '::';
}

/**
 * Whether two hosts on one port take the same address, as the master's lines name a holder: the same
 * host, or either one a wildcard (of either family: a near enough rule for naming who holds a port).
 */
export function hostsShareAddress(a: string | null, b: string | null): boolean {
  return isWildcardHost(a) || isWildcardHost(b) || a === b;
}
