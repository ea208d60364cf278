// clusterd's programmatic API: `import { start, connect } from 'clusterd'`.
//
// start(options) runs a master as a child process (`clusterd start`, with the options written to a
// private config file), not inside the caller's process: the master owns its signals (SIGTERM,
// SIGINT, SIGHUP), exits when its cluster stops and must outlive nothing it does not own, none of
// which a host process should hand over. Its handle is the same as connect()'s, over the control
// plane; start()'s master also stops, gracefully, when the calling process exits.
//
// Both handles emit, from the control plane's status stream:
//   'ready'        every worker is ready, and they are not the processes of the last 'ready' (after a
//                  reload, a restart, a replacement, a scale; for the handle's own reload(), restart()
//                  and scale(), before their promise resolves)
//   'worker-exit'  a worker's process went (id, pid); its replacement follows
//   'blocked'      a worker's loop was caught blocked (id, pid, blockedMs, frames)
//   'sample'       a worker's new loop sample (id, pid, sample)
//   'stopped'      the cluster stopped (asked by anyone, this handle's stop() too); the handle is closed

export { BootError, ClusterdError, UsageError } from './errors.js';
export type { ErrorCode } from './errors.js';
export { ExitCode } from './exit-codes.js';
export type { StatusJson, WorkerJson } from './cli/views.js';
export type { StackView } from './control/types.js';
export type { LoopSample } from './loop/types.js';
export { Cluster } from './api/cluster.js';
export type { BlockedEvent, ClusterEvents, KilledWorker, MasterExit, SampleEvent, StopResult, WorkerExitEvent } from './api/cluster.js';
export { start, StartError } from './api/start.js';
export type { StartOptions } from './api/start.js';
export { connect } from './api/connect.js';
export type { ConnectTarget } from './api/connect.js';
