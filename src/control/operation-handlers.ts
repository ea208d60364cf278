// The Control service's operations (Reload, Restart, Scale, Stop, Stack) over ControlOperations.
// Like the status handlers they never throw into grpc-js: every failure, thrown or rejected,
// becomes a status through toServiceError. A client that cancels a Reload or Restart stops
// hearing about it; the operation itself goes on (the cluster must not be left half-replaced
// because a terminal closed).
import * as grpc from '@grpc/grpc-js';
import type { ControlOperations, ControlSource, OperationProgress, ProfileOutcome } from '../master/status.js';
import { encodeLoop, encodeProfile, encodeProgress, encodeScale, encodeStack, encodeStopOutcome } from './convert-ops.js';
import type {
  WireLoopReply,
  WireLoopRequest,
  WireOperationProgress,
  WireProfileChunk,
  WireProfileRequest,
  WireReloadRequest,
  WireRestartRequest,
  WireScaleReply,
  WireScaleRequest,
  WireStackReply,
  WireStackRequest,
  WireStopReply,
  WireStopRequest,
} from './proto.js';
import { parseLoopRequest, parseProfileRequest, parseReloadRequest, parseScaleRequest, parseWorkerRequest } from './requests.js';
import { toServiceError } from './status-codes.js';
import { streamLife, type StreamLife, type TrackStream } from './stream-life.js';
import type { ProgressView } from './types.js';

/** The names of the rpcs this file implements (UNIMPLEMENTED when the master offers no operations). */
export const OPERATION_METHODS = ['Reload', 'Restart', 'Scale', 'Stop', 'Stack', 'Profile', 'Loop'] as const;

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;
type ProgressStream = grpc.ServerWritableStream<unknown, WireOperationProgress>;

export function operationHandlers(operations: ControlOperations, source: ControlSource, track: TrackStream): grpc.UntypedServiceImplementation {
  return {
    Reload: (call: grpc.ServerWritableStream<WireReloadRequest, WireOperationProgress>) =>
      streamOperation(call, track, async (onProgress) => {
        const { generation, replaced } = await operations.reload(parseReloadRequest(call.request), onProgress, requester(call));
        const plural = replaced === 1 ? '' : 's';
        return { id: 0, phase: 'done', pid: 0, generation, replaced, killed: null, message: `reloaded ${replaced} worker${plural}: generation ${generation}` };
      }),
    Restart: (call: grpc.ServerWritableStream<WireRestartRequest, WireOperationProgress>) =>
      streamOperation(call, track, async (onProgress) => {
        const { id } = parseWorkerRequest(call.request);
        let generation = 0;
        const { pid } = await operations.restart(id, (progress) => {
          generation = progress.generation;
          onProgress(progress);
        }, requester(call));
        return { id, phase: 'done', pid, generation, replaced: 1, killed: null, message: `worker ${id} restarted: now pid ${pid}` };
      }),
    Scale: unary<WireScaleRequest, WireScaleReply>(async (request, who) => encodeScale(await operations.scale(parseScaleRequest(request).spec, who))),
    Stop: unary<WireStopRequest, WireStopReply>(async (request, who) => {
      const masterPid = source.status().masterPid;
      // Read defensively: an operations object that does not know its --grace says 0 (unknown).
      const returned: unknown = operations.stop(who);
      const reply = { masterPid, graceMs: graceOf(returned), outcome: null };
      if (!request?.waitForOutcome) return reply;
      // Answered as the stop ends: the master closes its control plane only after this reply has
      // gone out (its listener lets calls under way finish), then exits.
      return { ...reply, outcome: encodeStopOutcome(await operations.stopped()) };
    }),
    Stack: unary<WireStackRequest, WireStackReply>(async (request) => encodeStack(await operations.stack(parseWorkerRequest(request).id))),
    Profile: (call: grpc.ServerWritableStream<WireProfileRequest, WireProfileChunk>) => streamProfile(call, operations, track),
    Loop: unary<WireLoopRequest, WireLoopReply>(async (request, _who, signal) => {
      const { id, durationMs } = parseLoopRequest(request);
      return encodeLoop(id, await operations.loop(id, { durationMs, signal }));
    }),
  };
}

/** Answers for every operation of a master that offers none (a control plane started without them). */
export function unimplementedOperations(): grpc.UntypedServiceImplementation {
  return Object.fromEntries([...OPERATION_METHODS, 'Logs'].map((method) => [method, unimplemented(method)]));
}

/** A handler that answers UNIMPLEMENTED: `method` is a part of the API this master does not offer. */
export function unimplemented(method: string): grpc.UntypedHandleCall {
  const refuse: Partial<grpc.StatusObject> = { code: grpc.status.UNIMPLEMENTED, details: `this master does not offer ${method}` };
  return (call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerUnaryCall<unknown, unknown>, callback?: grpc.sendUnaryData<unknown>) => {
    if (callback) callback(refuse);
    else (call as grpc.ServerWritableStream<unknown, unknown>).emit('error', refuse);
  };
}

/**
 * Profile: the profile's JSON in pieces (or one `blocked`), then OK; an error status otherwise. A
 * client that goes away leaves the profile to finish and be dropped.
 */
function streamProfile(call: grpc.ServerWritableStream<WireProfileRequest, WireProfileChunk>, operations: ControlOperations, track: TrackStream): void {
  const stream = serverStream(call, track, 'the profile was not finished');
  // The asker gone (Ctrl-C on `clusterd profile`), the profiler stops: the profile has no one to go to.
  const asker = new AbortController();
  call.once('cancelled', () => asker.abort());
  new Promise<ProfileOutcome>((resolve) => {
    const { id, durationMs, intervalUs } = parseProfileRequest(call.request);
    resolve(operations.profile(id, { durationMs, intervalUs, signal: asker.signal }));
  }).then(
    (outcome) => {
      if (!stream.open) return;
      for (const chunk of encodeProfile(outcome)) call.write(chunk);
      if (stream.close()) call.end();
    },
    (error: unknown) => {
      if (stream.close()) call.emit('error', toServiceError(error));
    },
  );
}

/** An operation's stream (streamLife): when the master stops first, the client gets UNAVAILABLE with `unfinished`. */
function serverStream(call: grpc.ServerWritableStream<unknown, unknown>, track: TrackStream, unfinished: string): StreamLife {
  return streamLife(call, track, { onMasterStop: () => call.emit('error', { code: grpc.status.UNAVAILABLE, details: `the master is stopping; ${unfinished}` }) });
}

/** A unary handler from an async function; whatever it throws becomes the call's status. */
/** Who made a call, for the master's log: its control socket, or the TCP peer's address. */
export function requester(call: { getPeer(): string }): string {
  let peer = '';
  try {
    peer = call.getPeer();
  } catch {
    // A call whose connection is gone: said as unknown.
  }
  if (peer.startsWith('unix:') || peer === '' || peer === 'unknown') return 'the control socket';
  return `${peer.replace(/^ipv[46]:/, '').replace(/^%5B(.*)%5D/, '[$1]')} over TCP`;
}

function unary<Req, Res>(run: (request: Req | undefined, who: string, signal: AbortSignal) => Res | Promise<Res>): Unary<Req, Res> {
  return (call, callback) => {
    // Aborted when the asker goes away (Ctrl-C on `clusterd loop`): what it asked for has no one to go to.
    const asker = new AbortController();
    call.once('cancelled', () => asker.abort());
    new Promise<Res>((resolve) => resolve(run(call.request ?? undefined, requester(call), asker.signal))).then(
      (reply) => callback(null, reply),
      (error: unknown) => callback(toServiceError(error)),
    );
  };
}

/**
 * Runs an operation, writing each step to the stream, then its final `done` message and OK, or
 * its error status. The stream may end first (client cancelled, server closing); the operation
 * is left to finish on its own.
 */
function streamOperation(call: ProgressStream, track: TrackStream, run: (onProgress: (progress: OperationProgress) => void) => Promise<ProgressView>): void {
  const stream = serverStream(call, track, 'the operation did not finish');
  const write = (progress: OperationProgress | ProgressView): void => {
    if (stream.open) call.write(encodeProgress(progress));
  };
  new Promise<ProgressView>((resolve) => resolve(run(write))).then(
    (done) => {
      write(done);
      if (stream.close()) call.end();
    },
    (error: unknown) => {
      if (stream.close()) call.emit('error', toServiceError(error));
    },
  );
}

function graceOf(value: unknown): number {
  if (typeof value !== 'object' || value === null || !('graceMs' in value)) return 0;
  const grace = Number(value.graceMs);
  return Number.isFinite(grace) && grace > 0 ? Math.round(grace) : 0;
}
