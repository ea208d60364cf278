// Finding clusters: the ones answering in this user's runtime directory, one by name (or the only
// one), or a remote one over TCP. Each yields a ControlClient and the status it read on the way.
import type { Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { ClusterdError } from '../errors.js';
import { ControlClient, DEFAULT_CALL_TIMEOUT_MS, PROBE_TIMEOUT_MS } from './client.js';
import type { TcpAddress } from './options.js';
import { checkRuntimeDirToRead, CLUSTER_NAME, nameOfSocket, runtimeDir, socketPath } from './paths.js';
import { NOT_RUNNING } from './status-codes.js';
import type { ClusterView } from './types.js';

export interface RunningCluster {
  name: string;
  socketPath: string;
  status: ClusterView;
}

/** A client and the status it read while connecting (so a command needs no second call). */
export interface Connection {
  client: ControlClient;
  status: ClusterView;
}

/** The clusters answering in the runtime directory, by name. Sockets nobody answers on are skipped. */
export async function listClusters(options: { dir?: string; timeoutMs?: number } = {}): Promise<RunningCluster[]> {
  return (await surveyClusters(options)).running;
}

/**
 * listClusters(), and the names whose socket a process still listens on but that did not answer in
 * time (`silent`: a master stopped with SIGSTOP, or one whose loop is blocked), which `ls` mentions
 * rather than leave out as if nothing ran there.
 */
export async function surveyClusters({ dir = runtimeDir(), timeoutMs = PROBE_TIMEOUT_MS }: { dir?: string; timeoutMs?: number } = {}): Promise<{ running: RunningCluster[]; silent: string[] }> {
  checkRuntimeDirToRead(dir);
  const silent: string[] = [];
  const found = await probeAll(dir, timeoutMs, silent);
  for (const { client } of found) client.close();
  return { running: found.map(({ name, socketPath, status }) => ({ name, socketPath, status })), silent };
}

/** Why a cluster in `silent` was not asked anything. */
export const SILENT = 'its master holds the control socket but did not answer (stopped, or its event loop blocked?)';

export interface ConnectOptions {
  /** The cluster's name; may be left out when exactly one cluster runs. */
  name?: string | undefined;
  /** A remote cluster's TCP listener and token, instead of the local runtime directory. */
  control?: ({ token: string } & TcpAddress) | undefined;
  dir?: string;
  timeoutMs?: number;
}

/**
 * Connects to the cluster `name` (or the only one running) and reads its status. Throws a
 * ClusterdError with exit code NOT_FOUND naming what it looked for when there is no such cluster.
 */
export async function connect({ name, control, dir = runtimeDir(), timeoutMs = DEFAULT_CALL_TIMEOUT_MS }: ConnectOptions): Promise<Connection> {
  if (control) return connectTcp(control, name, timeoutMs);
  checkRuntimeDirToRead(dir);
  if (name !== undefined) {
    if (!CLUSTER_NAME.test(name)) throw notFound(`no cluster named ${JSON.stringify(name)} is running (not a valid cluster name)`);
    const client = new ControlClient({ transport: 'unix', socketPath: socketPath(name, dir) });
    let status: ClusterView;
    try {
      status = await client.status({ timeoutMs });
    } catch (error) {
      client.close();
      if (!(error instanceof ClusterdError) || error.code !== NOT_RUNNING) throw error;
      const others = (await listClusters({ dir, timeoutMs: Math.min(timeoutMs, PROBE_TIMEOUT_MS) })).map((cluster) => cluster.name);
      const running = others.length === 0 ? 'none is running' : `running: ${others.join(', ')}`;
      throw notFound(`no cluster named ${name} is running (looked in ${dir}; ${running})`);
    }
    // `name.sock` a link to another cluster's socket: that cluster answers, and is not `name`.
    if (status.name !== name) {
      client.close();
      throw notFound(`no cluster named ${name} is running: ${socketPath(name, dir)} leads to cluster ${status.name}`);
    }
    return { client, status };
  }
  // A master that holds its socket but did not answer (SIGSTOP, a blocked loop) is a cluster all the
  // same: left out, `stop` with two running would stop "the only one" and leave the other running.
  const silent: string[] = [];
  const found = await probeAll(dir, Math.min(timeoutMs, PROBE_TIMEOUT_MS), silent);
  if (found.length === 1 && silent.length === 0) return { client: found[0]!.client, status: found[0]!.status };
  for (const { client } of found) client.close();
  if (found.length === 0 && silent.length === 0) throw notFound(`no running cluster found (looked in ${dir})`);
  if (found.length === 0 && silent.length === 1) {
    throw new ClusterdError('ERR_CLUSTERD_TIMEOUT', `the only cluster, ${silent[0]}: ${SILENT}`);
  }
  const names = [...found.map((cluster) => cluster.name), ...silent].sort();
  const described = names.map((name) => (silent.includes(name) ? `${name}: its master did not answer` : name));
  throw new ClusterdError('ERR_CLUSTERD_AMBIGUOUS', `${names.length} clusters are running (${described.join(', ')}): name the one you mean`);
}

async function connectTcp(control: { token: string } & TcpAddress, name: string | undefined, timeoutMs: number): Promise<Connection> {
  const client = new ControlClient({ transport: 'tcp', ...control });
  try {
    const status = await client.status({ timeoutMs });
    if (name !== undefined && status.name !== name) {
      throw notFound(`the cluster at ${client.address} is named ${status.name}, not ${name}`);
    }
    return { client, status };
  } catch (error) {
    client.close();
    throw error;
  }
}

/** Every cluster answering in `dir`, with an open client each (the caller closes them). */
async function probeAll(dir: string, timeoutMs: number, silent: string[] = []): Promise<(RunningCluster & { client: ControlClient })[]> {
  let files: Dirent[];
  try {
    files = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new ClusterdError('ERR_CLUSTERD_RUNTIME_DIR', `cannot read the runtime directory ${dir}: ${(error as Error).message}`, { cause: error });
  }
  // Sockets only (the type is lstat's): a symbolic link `x.sock` to a cluster's socket listed that
  // cluster twice, and made a command without NAME count two.
  const names = files.filter((file) => file.isSocket()).map((file) => nameOfSocket(file.name)).filter((name): name is string => name !== null).sort();
  const probes = await Promise.all(
    names.map(async (name) => {
      const path = socketPath(name, dir);
      const client = new ControlClient({ transport: 'unix', socketPath: path });
      try {
        const status = await client.status({ timeoutMs });
        // A hard link to another cluster's socket: that cluster, listed under its own name already.
        if (status.name !== name) {
          client.close();
          return null;
        }
        return { name, socketPath: path, client, status };
      } catch (error) {
        // Stale (its master died without removing it: refused) or not answering: not a running cluster.
        client.close();
        if (!(error instanceof ClusterdError) || error.code !== NOT_RUNNING) silent.push(name);
        return null;
      }
    }),
  );
  return probes.filter((probe) => probe !== null);
}

function notFound(message: string): ClusterdError {
  return new ClusterdError('ERR_CLUSTERD_NOT_FOUND', message);
}
