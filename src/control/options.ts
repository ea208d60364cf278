// The control plane's command-line values, shared by `start` (the master's TCP listener) and the
// client commands (`--control HOST:PORT` to reach a remote cluster).
import { formatAddress } from '../address.js';
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

/** Parses `HOST:PORT`, `[IPv6]:PORT`; port 0 asks the system for a free one (listener only). A refusal names the value as `named` (the flag, or an API's key). */
export function parseControlAddress(value: unknown, option = 'control', named = `\`--${option}\``): TcpAddress {
  const text = String(value).trim();
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > 65_535) {
    throw new UsageError(`Expected ${named} to be HOST:PORT, such as 127.0.0.1:7070 or [::1]:7070, got \`${text}\``);
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
  if (/^\d+$/.test(text)) {
    if (Number(text) > 65_535) throw new UsageError(`Expected \`--${option}\`'s port to be from 0 to 65535, got \`${text}\``);
    return { host: '127.0.0.1', port: Number(text) };
  }
  if (!isSocketPath(text)) {
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

/** Whether a --listen or --dashboard value names a unix socket (one with a / or ending in .sock) rather than an address. */
export function isSocketPath(value: string): boolean {
  const text = value.trim();
  return text.includes('/') || text.endsWith('.sock');
}

/** `http://host:port/` for a TCP listener, `unix:/path` for a socket (curl --unix-socket /path http://localhost/). */
export function listenUrl(address: ListenAddress): string {
  return 'path' in address ? `unix:${address.path}` : `http://${formatControlAddress(address)}/`;
}

/** `host:port` as gRPC and people read it, with IPv6 hosts in brackets. */
export function formatControlAddress({ host, port }: TcpAddress): string {
  return formatAddress({ address: host, port });
}

/** Environment variable read when neither token flag is given (keeps the token out of `ps`). */
export const TOKEN_ENV = 'CLUSTERD_CONTROL_TOKEN';

/** Read when `--dashboard` is given without `--dashboard-token`. */
export const DASHBOARD_TOKEN_ENV = 'CLUSTERD_DASHBOARD_TOKEN';

/** Where a token may come from: its flag, its -file flag, or an environment variable, in that order. */
interface TokenSources {
  token?: string | undefined;
  tokenFile?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

/**
 * A token from `--<flag>`, `--<flag>-file` or $<envName>, in that order (a file's trailing newline
 * is not part of it), with where it came from; undefined when none gives one.
 */
function readToken(flag: string, envName: string, { token, tokenFile, env = process.env }: TokenSources): { value: string; source: string } | undefined {
  if (token !== undefined && tokenFile !== undefined) throw new UsageError(`Expected one of \`--${flag}\` and \`--${flag}-file\`, got both`);
  if (tokenFile !== undefined) {
    try {
      return { value: readFileSync(tokenFile, 'utf8').replace(/\r?\n$/, ''), source: `the token file ${tokenFile}` };
    } catch (error) {
      throw new UsageError(`Cannot read \`--${flag}-file\` ${tokenFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
  const value = token ?? env[envName];
  return value === undefined ? undefined : { value, source: token !== undefined ? `\`--${flag}\`` : `$${envName}` };
}

/**
 * --dashboard-token, --dashboard-token-file or $CLUSTERD_DASHBOARD_TOKEN: the same sources as the
 * control token; null: read-only.
 */
export function readDashboardToken(sources: TokenSources): string | null {
  const found = readToken('dashboard-token', DASHBOARD_TOKEN_ENV, sources);
  if (found === undefined) return null;
  // It travels in an HTTP header: printable ASCII only, and no blank token that anyone could send.
  if (!/^[\x21-\x7e][\x20-\x7e]*$/.test(found.value) || found.value.trim() !== found.value) {
    throw new UsageError(`Expected ${found.source} to be a non-empty token of printable ASCII characters on one line, without leading or trailing spaces`);
  }
  return found.value;
}

/** What the dashboard's token may come from. */
export type DashboardTokenSources = Omit<TokenSources, 'env'>;

/**
 * The dashboard's token for `listen` (`where`: the flag that gave it): on a unix socket none, and
 * none may be given (only this user can connect); on TCP it makes the actions available.
 */
export function dashboardToken(listen: ListenAddress, sources: DashboardTokenSources, where: string): string | null {
  if (!('path' in listen)) return readDashboardToken(sources);
  const given = sources.token !== undefined ? 'dashboard-token' : sources.tokenFile !== undefined ? 'dashboard-token-file' : null;
  if (given !== null) throw new UsageError(`\`--${given}\` is for a TCP ${where}: on a unix socket actions need no token (only this user can connect)`);
  return null;
}

/**
 * The token from `--control-token`, `--control-token-file` or $CLUSTERD_CONTROL_TOKEN, in that
 * order; a file's trailing newline is not part of it. Throws when none gives a non-empty token.
 */
export function readControlToken(sources: TokenSources): string {
  const found = readToken('control-token', TOKEN_ENV, sources);
  if (found === undefined) {
    throw new UsageError(`\`--control\` needs a token: give \`--control-token\`, \`--control-token-file\` or $${TOKEN_ENV}`);
  }
  return checkControlToken(found.value, found.source);
}

/**
 * `token`, where it can be the control token (`source`: where it was given). Checked for a
 * `--control-token` given without `--control` too, as the config file's schema checks it.
 */
export function checkControlToken(token: string, source = '`--control-token`'): string {
  // It travels as an HTTP/2 header value: printable ASCII only.
  if (!isTokenText(token)) {
    throw new UsageError(`Expected ${source} to hold a non-empty token of printable ASCII characters on one line, without leading or trailing spaces`);
  }
  return token;
}

/**
 * Whether a token can travel as an HTTP/2 header value: printable ASCII, on one line, not empty, and
 * no space at either end (a header value loses those on the way, so no client could ever match it).
 */
export function isTokenText(token: unknown): token is string {
  return typeof token === 'string' && /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(token);
}
