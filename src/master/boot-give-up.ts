// Whether a failed boot ends the cluster, when no worker serves: an address it cannot bind, flags node
// refuses, or --max-boot-failures boots failed in a row. The Supervisor asks on each failed boot and
// stops the cluster with the error, or retries the id with its backoff.
import { BootError, ListenError, UsageError, type ClusterdError } from '../errors.js';
import type { ClusterConfig } from './cluster-config.js';
import { nodeRefusedFlags } from './exit-report.js';
import { describeListenFailure, type OwnListener } from './listen-failure.js';
import type { ListenFailure } from './listeners.js';
import type { Phase } from './supervisor.js';
import type { WorkerExit, WorkerProcess } from './worker.js';

/** A worker's failed boot, as the supervisor saw it. */
export interface FailedBoot {
  exit: WorkerExit;
  worker: Pick<WorkerProcess, 'id' | 'stderrTail' | 'lastOutput'>;
  /** The exit in words (describeExit). */
  reason: string;
  /** Its failure to bind an address, if that is how it failed. */
  listenFailure: ListenFailure | undefined;
  /** The master's own listeners, named when one of them holds the address. */
  ownListeners: readonly OwnListener[];
  phase: Phase;
  /** Failed boots in a row: of every id together, and of this worker's id. */
  failures: { all: number; id: number };
  config: Pick<ClusterConfig, 'maxBootFailures' | 'nodeArgGiven'>;
}

/** With no worker serving: the error the cluster gives up with, or null when the id is to be retried. */
export function giveUpOnBoot({ exit, worker, reason, listenFailure, ownListeners, phase, failures: counts, config }: FailedBoot): ClusterdError | null {
  if (listenFailure) return new ListenError(describeListenFailure(listenFailure, ownListeners));
  // Node itself refused the flags (--node-arg): every boot would fail the same way.
  const refused = nodeRefusedFlags(exit, worker.stderrTail.lines());
  if (refused !== null) return new UsageError(`node refused the workers' flags: ${refused} (check ${config.nodeArgGiven ?? '--node-arg'})`);
  // At start, every id's failures together: an app that never booted is broken, and says so
  // after --max-boot-failures boots, not that many of each of -i 64. Once the cluster has run,
  // per id: with -i 3 and --max-boot-failures 3, one round of workers failing together (a
  // dependency down for a moment) ended the cluster in a second, before any backoff. An id
  // over the count from earlier (while others served) is judged at its own next try.
  const failures = phase === 'booting' ? counts.all : counts.id;
  if (failures >= config.maxBootFailures) {
    return new BootError(`app failed to boot ${failures === 1 ? 'once' : `${failures} times in a row`}; last: worker ${worker.id} ${reason}`, worker.lastOutput());
  }
  return null;
}
