// What the supervisor runs: the cluster's settings, as the master resolved them from the command
// line and the config file.
import type { BackoffPolicy } from './backoff.js';
import type { BalanceMode } from './balancers/index.js';
import type { Entry } from './entry.js';
import type { LogSink } from './logs.js';

export interface ClusterConfig {
  name: string;
  entry: Entry;
  args: readonly string[];
  /** Environment variables for the app (the config file's `env`), over the master's own. */
  env?: Readonly<Record<string, string>>;
  instances: number;
  balance: BalanceMode;
  waitReady: boolean;
  /** How long a worker may take from fork to ready. */
  listenTimeoutMs: number;
  /** How long a stopping worker may drain before it is killed. */
  graceMs: number;
  /** --kill-signal: what the app's listeners hear on a graceful stop (emitted in the worker, never sent). */
  killSignal: NodeJS.Signals;
  /** Failed boots in a row (no worker got ready in between) before the master gives up, none serving: of all ids at start-up, then of one id. */
  maxBootFailures: number;
  /** How often workers report loop stats, in ms; 0 turns them off. */
  statsIntervalMs: number;
  /** A worker whose loop stays blocked longer than this (ms) is reported and replaced; 0: never. */
  watchdogMs: number;
  /** --report-blocked: a loop blocked longer than this (ms) has its stack taken, without harm; 0: never. */
  reportBlockedMs: number;
  backoff?: BackoffPolicy;
  logs: LogSink;
  /** Where the node arguments were given, for a message: `--node-arg` (the default), or a config file's key. */
  nodeArgGiven?: string;
  /** Where --listen-timeout is set, for the note on a worker it killed: `--listen-timeout` (the default), or a config file's key. */
  listenTimeoutGiven?: string;
}
