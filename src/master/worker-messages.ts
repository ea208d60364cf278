// What a worker says to the master over its IPC channel, and where each message goes. The channel
// is listened to for both kinds of message (the runtime's, as Node's internal messages; the app's
// own PM2-style 'ready'), guarded (garbage on fd 3, a forged handle ack: the worker goes, not the
// master), and each message parsed (a malformed one, or a sample its runtime cannot have measured,
// dropped and logged): those of its sockets go to the Listeners, `loop`'s answers to its
// LoopRequests, the app's SIGUSR1 to its probes, and what changes the worker itself (ready,
// listening, draining, acks, samples) to the WorkerProcess through MessageHost. Every message's
// shape is in src/protocol.ts.
import type { ChildProcess } from 'node:child_process';
import { guardChannel } from './channel-guard.js';
import type { ChannelMisuse } from './channel-misuse.js';
import type { DrainReport } from './grace.js';
import type { Listeners } from './listeners.js';
import type { LoopRequests } from './loop-requests.js';
import { implausibleSample, type SampleContext } from './sample-bounds.js';
import type { LogSink } from './logs.js';
import type { WorkerProbes } from './worker-probes.js';
import type { WorkerProcess } from './worker.js';
import { isProtocolMessage } from '../protocol.js';
import { parseWorkerMessage } from '../protocol/parse.js';
import type { LoopSample } from '../loop/types.js';

/** The WorkerProcess whose messages these are: where they go, and what they change in it. */
export interface MessageHost {
  /** The worker, as its sockets know it. */
  readonly worker: WorkerProcess;
  readonly logs: LogSink;
  readonly listeners: Listeners;
  /** --wait-ready: the app's 'ready' says it is ready, not the runtime's. */
  readonly waitReady: boolean;
  readonly killSignal: NodeJS.Signals;
  /** Its malformed messages and the handles it sent, logged at most once a minute. */
  readonly misuse: Pick<ChannelMisuse, 'malformed' | 'handleClosed'>;
  /** `clusterd loop` windows asked for and not answered yet. */
  readonly loops: Pick<LoopRequests, 'answer'>;
  readonly probes: Pick<WorkerProbes, 'usr1Taken'>;
  /** It is ready (as --wait-ready says which 'ready' counts). */
  markReady(): void;
  /** It acked a connection, with this many open. */
  acked(connections: number): void;
  /** Its app has closed every server it listened on by its own hand (false), or listens again. */
  listening(listening: boolean): void;
  /** What its drain still has open, as it says while stopping. */
  draining(report: DrainReport): void;
  /** What the master knows of it to check a sample against (sample-bounds.ts). */
  sampleContext(): SampleContext;
  /** Its loop sample, every stats interval (one that passed sample-bounds.ts). */
  sampled(sample: LoopSample): void;
  /** The app called process.disconnect(): the channel's close that follows ends the worker. */
  disconnecting(): void;
}

/**
 * Listens to the worker's channel for the rest of its life. Settles once the channel has closed:
 * every message the worker sent (a 'disconnecting' that says why it went) has been routed by then.
 * Its end read is enough (the guard's onEnd): Node's 'disconnect' never came for a worker killed
 * while a handle the master sent it waited for its acknowledgement, and every such exit waited out
 * OUTPUT_AFTER_EXIT_MS before its restart, said as an IPC channel held open.
 */
export function followMessages(child: ChildProcess, host: MessageHost): Promise<void> {
  const { worker, logs } = host;
  const pid = child.pid ?? 0;
  // The runtime's commands come as Node's internal messages (src/protocol.ts); the app's own
  // (the PM2-style 'ready') as messages.
  const onMessage = (message: unknown): void => routeMessage(message, host);
  child.on('message', onMessage);
  (child as NodeJS.EventEmitter).on('internalMessage', onMessage);
  let ended = (): void => {};
  const closed = new Promise<void>((resolve) => (ended = resolve));
  // Garbage on fd 3, a forged handle ack, a message without end: the worker goes, not the master.
  guardChannel(child, {
    // The messages of the last reads go out on the next tick: routed before this settles.
    onEnd: () => setImmediate(ended),
    onBroken: (why) => {
      logs.event('channel-broken', `worker ${worker.id} (pid ${pid}) broke its IPC channel: ${why}; killing it`, { worker: worker.id, pid, why }, 'error');
      worker.kill();
    },
    // The runtime sends the master no handles: the guard closed it (kept, a worker sending them ran
    // the master out of descriptors). An app's 'ready' sent with one still counts.
    onHandle: (message) => {
      host.misuse.handleClosed();
      if (message === 'ready') onMessage(message);
    },
  });
  if (child.connected) child.once('disconnect', ended);
  else ended();
  return closed;
}

function routeMessage(message: unknown, host: MessageHost): void {
  const { worker, listeners } = host;
  if (message === 'ready') {
    if (host.waitReady) host.markReady();
    return;
  }
  if (!isProtocolMessage(message)) return;
  const parsed = parseWorkerMessage(message);
  if (!parsed.ok) {
    host.misuse.malformed(message.cmd, parsed.error);
    return;
  }
  const msg = parsed.value;
  switch (msg.cmd) {
    case 'NODE_clusterd:listen':
      listeners.listen(worker, msg.seq, msg.query);
      break;
    case 'NODE_clusterd:close':
      listeners.close(worker, msg.key);
      break;
    case 'NODE_clusterd:own-listen': {
      const refused = listeners.ownListen(worker, msg);
      if (refused !== null) host.misuse.malformed(msg.cmd, refused);
      break;
    }
    case 'NODE_clusterd:own-close':
      listeners.ownClose(worker, msg);
      break;
    case 'NODE_clusterd:ack':
      host.acked(msg.connections);
      listeners.ack(worker, msg.key, msg.id, msg.accepted);
      break;
    case 'NODE_clusterd:ready':
      if (!host.waitReady) host.markReady();
      break;
    case 'NODE_clusterd:listening':
      host.listening(msg.listening);
      break;
    case 'NODE_clusterd:loop-reply':
      host.loops.answer(msg.seq, msg.breakdown);
      break;
    case 'NODE_clusterd:full':
    case 'NODE_clusterd:under':
    case 'NODE_clusterd:lagging':
    case 'NODE_clusterd:load':
      listeners.report(worker, msg);
      break;
    case 'NODE_clusterd:draining':
      // Only a stopping worker drains: the app may send this at any time, and it means nothing then.
      if (worker.state !== 'stopping') break;
      host.draining({ open: msg.open, appExits: msg.appExits });
      if (msg.listensFor) unheardSignal(host, msg.listensFor);
      break;
    case 'NODE_clusterd:usr1-taken':
      host.probes.usr1Taken();
      break;
    case 'NODE_clusterd:disconnecting':
      host.disconnecting();
      break;
    case 'NODE_clusterd:stats': {
      // Figures the runtime cannot have measured: dropped and counted as malformed, never clamped.
      const implausible = implausibleSample(msg.sample, host.sampleContext());
      if (implausible === null) host.sampled(msg.sample);
      else host.misuse.malformed(msg.cmd, implausible);
      break;
    }
  }
}

/** The app's shutdown code waits for another signal than the kill signal: said once per cluster (per log sink). */
function unheardSignal({ worker, logs, killSignal }: MessageHost, listensFor: 'SIGINT' | 'SIGTERM'): void {
  logs.eventOnce(
    'kill-signal-unheard',
    `worker ${worker.id}'s app listens for ${listensFor}, not for the kill signal ${killSignal}: its ${listensFor} listeners do not run on a stop${listensFor === 'SIGINT' ? ' (PM2 sends SIGINT)' : ''}; start with --kill-signal ${listensFor} to run them`,
    { worker: worker.id, pid: worker.pid, listensFor, killSignal },
    'warn',
  );
}
