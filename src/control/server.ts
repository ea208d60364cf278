// The master's side of the control plane: the Control service on `<runtime dir>/<name>.sock`
// (owner only, no token) and, on request, on a TCP address (token required).
//
// Claiming the socket name: bind on a private temporary name, then link(2) it to `<name>.sock`.
// link fails with EEXIST if the name exists, so of two masters starting with one name at the
// same moment exactly one wins, and a client never sees a socket file before it answers. A
// socket file left by a master that died (nobody answers on it) is removed first. What remains
// racy is two masters both removing the same stale file at once; the loser then finds the
// winner answering and is refused like any duplicate.
import { chmodSync, existsSync, linkSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import type { AddressInfo, ListenOptions } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { DashboardSource } from '../dashboard/feed.js';
import type { ControlOperations, ControlSource } from '../master/status.js';
import { ClusterdError, UsageError } from '../errors.js';
import { requireToken } from './auth.js';
import { ControlClient } from './client.js';
import { ControlHandlers } from './handlers.js';
import { ConnectionGuard } from './guard.js';
import { GrpcListener } from './listener.js';
import { formatControlAddress, type TcpAddress } from './options.js';
import { CLUSTER_NAME, ensureRuntimeDir, runtimeDir, socketPath as socketPathOf } from './paths.js';
import { controlService } from './proto.js';
import { answers } from './socket-file.js';

export interface ControlServerOptions {
  /** The cluster name: the socket is `<dir>/<name>.sock`. */
  name: string;
  source: ControlSource;
  /** Reload, Restart, Scale, Stop, Stack and Logs; without it they answer UNIMPLEMENTED. */
  operations?: ControlOperations | undefined;
  /** The dashboard's feed, for the Dashboard rpc; without it, UNIMPLEMENTED. */
  dashboard?: DashboardSource | undefined;
  /** Also serve on TCP; every call there must carry `authorization: Bearer <token>`. */
  tcp?: ({ token: string } & TcpAddress) | undefined;
  /** The runtime directory; by default runtimeDir() ($CLUSTERD_RUNTIME_DIR, $XDG_RUNTIME_DIR/clusterd, ...). */
  dir?: string;
}

export interface ControlServer {
  readonly socketPath: string;
  /** The TCP listener's address (with the real port when 0 was asked for), or null. */
  readonly tcpAddress: TcpAddress | null;
  /** Open Watch streams. */
  readonly watchers: number;
  /** Open server streams of any kind (Watch, Reload, Restart, Logs). */
  readonly streams: number;
  /** Ends open streams (Watch, Logs, operations), removes the socket file and stops listening. Safe to call twice. */
  close(): Promise<void>;
}

/** How long a probe of an existing socket file may take before it counts as answering nobody. */
const PROBE_TIMEOUT_MS = 1_000;
/** In-flight unary calls get this long to finish on close. */
const SHUTDOWN_GRACE_MS = 1_000;

/**
 * Starts the control plane of the cluster `name`. Throws a ClusterdError when a live cluster of
 * that name already answers, when the runtime directory is unsafe, or when the TCP address
 * cannot be bound.
 */
export async function startControlServer({ name, source, operations, dashboard, tcp, dir = runtimeDir() }: ControlServerOptions): Promise<ControlServer> {
  if (!CLUSTER_NAME.test(name)) throw new UsageError(`Expected the cluster name to be 1-64 letters, digits, '.', '_' or '-', got \`${name}\``);
  if (tcp && tcp.token.length === 0) throw new UsageError('Expected a non-empty control token for the TCP control listener');
  ensureRuntimeDir(dir);
  const path = socketPathOf(name, dir);
  const handlers = new ControlHandlers(source, operations ?? null, dashboard ?? null);
  const { definition } = controlService();

  const unixListener = new GrpcListener({ definition, implementation: handlers.implementation() });
  let tcpListener: GrpcListener | null = null;
  let socketInode: number | null = null;

  const removeSocket = (): void => {
    // Only our own: a successor of the same name may already have claimed the path.
    try {
      if (socketInode !== null && statSync(path).ino === socketInode) unlinkSync(path);
    } catch {
      // Already gone.
    }
    socketInode = null;
  };
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    onExit.delete(removeSocket);
    removeSocket();
    handlers.endStreams();
    await Promise.all([unixListener.close(SHUTDOWN_GRACE_MS), tcpListener?.close(SHUTDOWN_GRACE_MS)]);
  };

  try {
    await clearStaleSocket(path, name);
    socketInode = await claimSocket(unixListener, path, name, dir);
    // A master that exits without close() (process.exit in a signal path) still leaves no file.
    removeOnExit(removeSocket);
    let tcpAddress: TcpAddress | null = null;
    if (tcp) {
      const guard = new ConnectionGuard();
      tcpListener = new GrpcListener({
        definition,
        implementation: handlers.implementation(),
        interceptors: [requireToken(tcp.token, (connection) => guard.authenticated(connection))],
        guard,
      });
      const bound = await listen(tcpListener, { host: tcp.host, port: tcp.port }, `--control ${formatControlAddress(tcp)}`);
      tcpAddress = { host: tcp.host, port: (bound as AddressInfo).port };
    }
    return {
      socketPath: path,
      tcpAddress,
      get watchers() {
        return handlers.watchers;
      },
      get streams() {
        return handlers.streams;
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Socket files to remove should the process exit without close(); one 'exit' listener for all. */
const onExit = new Set<() => void>();
let exitHooked = false;

function removeOnExit(remove: () => void): void {
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', () => {
      for (const hook of onExit) hook();
    });
  }
  onExit.add(remove);
}

/** Removes a socket file nobody answers on; throws if a cluster (or anything) answers on it. */
async function clearStaleSocket(path: string, name: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // No file: nothing to clear.
  }
  if (!isSocket) throw new ClusterdError('ERR_CLUSTERD_NAME_IN_USE', `${path} exists and is not a socket; remove it to start a cluster named ${name}`);
  if (await answers(path)) throw await alreadyRunning(path, name);
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Binds on a temporary name, makes it owner-only, links it to `path`; returns its inode. */
async function claimSocket(listener: GrpcListener, path: string, name: string, dir: string): Promise<number> {
  // A dot name: never mistaken for a cluster by listClusters, and short enough for sun_path.
  const temporary = join(dir, `.${process.pid}-${randomBytes(4).toString('hex')}.sock`);
  await listen(listener, { path: temporary }, `the control socket ${temporary}`);
  try {
    // Mode before the name appears: no moment where the socket is reachable with a looser one.
    chmodSync(temporary, 0o600);
    try {
      linkSync(temporary, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // Another master of this name claimed it between our check and now.
      if (await answers(path)) throw await alreadyRunning(path, name);
      throw new ClusterdError('ERR_CLUSTERD_NAME_IN_USE', `another clusterd is starting a cluster named ${name}; try again`);
    }
    return statSync(path).ino;
  } finally {
    try {
      unlinkSync(temporary);
    } catch {
      // The server's own close would remove it too.
    }
  }
}

async function listen(listener: GrpcListener, options: ListenOptions, what: string): Promise<AddressInfo | string> {
  try {
    return await listener.listen(options);
  } catch (error) {
    throw new ClusterdError('ERR_CLUSTERD_CONTROL_LISTEN', `cannot listen on ${what}: ${(error as Error).message}`, { cause: error });
  }
}

async function alreadyRunning(path: string, name: string): Promise<ClusterdError> {
  const client = new ControlClient({ transport: 'unix', socketPath: path });
  let pid: number | null = null;
  try {
    pid = (await client.status({ timeoutMs: PROBE_TIMEOUT_MS })).masterPid;
  } catch {
    // It accepts connections but does not answer Status: still not ours to take.
  } finally {
    client.close();
  }
  const who = pid === null ? `its socket ${path} answers` : `pid ${pid}`;
  return new ClusterdError('ERR_CLUSTERD_NAME_IN_USE', `a cluster named ${name} is already running (${who})`);
}

/** Throws the "already running" error when a live master serves the cluster `name`. */
export async function assertNameFree(name: string, dir: string = runtimeDir()): Promise<void> {
  const path = socketPathOf(name, dir);
  if (existsSync(path) && (await answers(path))) throw await alreadyRunning(path, name);
}
