// connect(): a handle on a cluster already running, by name or over TCP with a token.
import { checkKeys } from '../cli/known-keys.js';
import { connect as connectControl } from '../control/discovery.js';
import { isTokenText, parseControlAddress, type TcpAddress } from '../control/options.js';
import { UsageError } from '../errors.js';
import { Cluster } from './cluster.js';

export interface ConnectTarget {
  /** The cluster's name (may be left out when exactly one runs in this user's runtime directory). */
  name?: string;
  /** A remote cluster's control plane: HOST:PORT of its `--control`, with its token. */
  control?: string;
  /** The remote control plane's token: with `control` only (a cluster found by name needs none). */
  token?: string;
}

/** A handle on a running cluster, by name (this user's runtime directory) or over TCP with a token. */
export async function connect(target: string | ConnectTarget = {}): Promise<Cluster> {
  // Called from JavaScript too, where nothing checks the type.
  if (typeof target !== 'string' && (typeof target !== 'object' || target === null || Array.isArray(target))) {
    throw new UsageError(`connect(): expected a cluster name or { name, control, token }, got ${target === null ? 'null' : Array.isArray(target) ? 'an array' : typeof target}`);
  }
  if (typeof target === 'object') checkKeys('connect()', target, ['name', 'control', 'token']);
  const { name, control, token } = typeof target === 'string' ? { name: target } : target;
  if (name !== undefined && typeof name !== 'string') throw new UsageError(`connect(): \`name\` must be a string, got ${typeof name}`);
  if (control !== undefined && typeof control !== 'string') throw new UsageError(`connect(): \`control\` must be a HOST:PORT string, got ${typeof control}`);
  if (control !== undefined && token === undefined) throw new UsageError('connect(): a `control` address needs its `token`');
  // A cluster found by name is reached through its local socket, which takes no token: one given
  // without `control` was ignored, and the caller believed it was checked.
  if (token !== undefined && control === undefined) throw new UsageError('connect(): `token` is for a `control` address: give `control` (HOST:PORT) with it, or leave `token` out to connect by `name`');
  // (Never echoed: it is a secret, and one read from a file often ends in a newline.)
  if (token !== undefined && !isTokenText(token)) throw new UsageError('connect(): `token` must be printable ASCII on one line, with no space at either end (a trailing newline from a file?)');
  const { client, status } = await connectControl({
    name,
    control: control === undefined ? undefined : { ...controlAddress(control), token: token! },
  });
  return new Cluster(client, status);
}

/** connect()'s `control`, named as its key, not as the command line's `--control`. */
function controlAddress(text: string): TcpAddress {
  try {
    return parseControlAddress(text, 'control', '`control`');
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    throw new UsageError(`connect(): ${error.message}`);
  }
}
