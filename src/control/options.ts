// The control plane's command-line values, shared by `start` (the master's TCP listener) and the
// client commands (`--control HOST:PORT` to reach a remote cluster).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { MAX_SOCKET_PATH_BYTES } from './socket-file.js';

/** The bounds of a Watch stream's interval (`top --interval`); the master clamps requests to them. */
export const MIN_WATCH_INTERVAL_MS = 50;
export const MAX_WATCH_INTERVAL_MS = 60_000;

export interface TcpAddress {
  host: string;
  port: number;
}

/** Parses `HOST:PORT`, `[IPv6]:PORT`; port 0 asks the system for a free one (listener only). */
export function parseControlAddress(value: unknown, option = 'control'): TcpAddress {
  const text = String(value).trim();
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > 65_535) {
    throw new UsageError(`Expected \`--${option}\` to be HOST:PORT, such as 127.0.0.1:7070 or [::1]:7070, got \`${text}\``);
  }
  return { host: (match[1] ?? match[2])!, port };
}

/** A listener's address: TCP, or a unix socket's absolute path. */
export type ListenAddress = TcpAddress | { path: string };

/**
 * `--dashboard` and `dashboard --listen`: a value that contains a `/` or ends in `.sock` is a unix
 * socket path (`./dash.sock`, `/run/app/dash.sock`, `dash.sock`), resolved from `cwd`; a bare PORT
 * is 127.0.0.1:PORT; anything else is HOST:PORT. (HOST:PORT never holds a `/`, and no host name ends in `.sock:PORT`'s way.)
 */
export function parseListenAddress(value: unknown, option: string, cwd = process.cwd()): ListenAddress {
  const text = String(value).trim();
  // A bare port: on the loopback interface, as everything clusterd serves unless told otherwise.
  if (/^\d{1,5}$/.test(text)) return parseControlAddress(`127.0.0.1:${text}`, option);
  if (!text.includes('/') && !text.endsWith('.sock')) {
    try {
      return parseControlAddress(text, option);
    } catch {
      throw new UsageError(`Expected \`--${option}\` to be HOST:PORT, such as 127.0.0.1:7071, or a unix socket path (one with a / or ending in .sock), got \`${text}\``);
    }
  }
  const path = resolve(cwd, text);
  if (text.endsWith('/')) throw new UsageError(`Expected \`--${option}\` to be a socket path, not a directory, got \`${text}\``);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new UsageError(`Expected \`--${option}\`'s socket path to be at most ${MAX_SOCKET_PATH_BYTES} bytes once absolute (a unix socket's limit), got ${Buffer.byteLength(path)}: \`${path}\``);
  }
  return { path };
}

/** `http://host:port/` for a TCP listener, `unix:/path` for a socket (curl --unix-socket /path http://localhost/). */
export function listenUrl(address: ListenAddress): string {
  return 'path' in address ? `unix:${address.path}` : `http://${formatControlAddress(address)}/`;
}

/** `host:port` as gRPC and people read it, with IPv6 hosts in brackets. */
export function formatControlAddress({ host, port }: TcpAddress): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Environment variable read when neither token flag is given (keeps the token out of `ps`). */
export const TOKEN_ENV = 'CLUSTERD_CONTROL_TOKEN';

/** Read when `--dashboard` is given without `--dashboard-token`. */
export const DASHBOARD_TOKEN_ENV = 'CLUSTERD_DASHBOARD_TOKEN';

/** --dashboard-token (or $CLUSTERD_DASHBOARD_TOKEN): the same rules as the control token; null: read-only. */
export function readDashboardToken({ token, env = process.env }: { token?: string | undefined; env?: NodeJS.ProcessEnv }): string | null {
  const value = token ?? env[DASHBOARD_TOKEN_ENV];
  if (value === undefined) return null;
  // It travels in an HTTP header: printable ASCII only, and no blank token that anyone could send.
  if (!/^[\x21-\x7e][\x20-\x7e]*$/.test(value) || value.trim() !== value) {
    const source = token !== undefined ? '`--dashboard-token`' : `$${DASHBOARD_TOKEN_ENV}`;
    throw new UsageError(`Expected ${source} to be a non-empty token of printable ASCII characters on one line, without leading or trailing spaces`);
  }
  return value;
}

/**
 * The token from `--control-token`, `--control-token-file` or $CLUSTERD_CONTROL_TOKEN, in that
 * order; a file's trailing newline is not part of it. Throws when none gives a non-empty token.
 */
export function readControlToken(
  { token, tokenFile, env = process.env }: { token?: string | undefined; tokenFile?: string | undefined; env?: NodeJS.ProcessEnv },
): string {
  if (token !== undefined && tokenFile !== undefined) {
    throw new UsageError('Expected one of `--control-token` and `--control-token-file`, got both');
  }
  let value: string | undefined = token ?? env[TOKEN_ENV];
  let source = token !== undefined ? '`--control-token`' : `$${TOKEN_ENV}`;
  if (tokenFile !== undefined) {
    source = `the token file ${tokenFile}`;
    try {
      value = readFileSync(tokenFile, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new UsageError(`Cannot read \`--control-token-file\` ${tokenFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
  if (value === undefined) {
    throw new UsageError(`\`--control\` needs a token: give \`--control-token\`, \`--control-token-file\` or $${TOKEN_ENV}`);
  }
  // It travels as an HTTP/2 header value: printable ASCII only.
  if (!/^[\x20-\x7e]+$/.test(value)) {
    throw new UsageError(`Expected ${source} to hold a non-empty token of printable ASCII characters on one line`);
  }
  return value;
}
