// The operations' messages (progress, stacks, blocked reports, log lines): master -> wire and
// wire -> what a client sees. Like convert.ts, field by field so the compiler catches a new one.
import type { BlockedInfo, KilledWorker, LogEntry, LoopOutcome, OperationProgress, ProfileOutcome, ScaleOutcome, StackFrame, StackReport, StopOutcome } from '../master/status.js';
import type { LoopPhaseName, PhaseTime } from '../loop/types.js';
import type {
  WireBlockedReport,
  WireKilledWorker,
  WireLogEntry,
  WireLogStream,
  WireLoopState,
  WireOperationPhase,
  WireOperationProgress,
  WireStackFrame,
  WireStackReply,
  WireProfileChunk,
  WireLoopReply,
  WireScaleReply,
  WireStopOutcome,
} from './proto.js';
import type { BlockedView, LogView, LoopView, ProgressView, StackView } from './types.js';


const WIRE_PHASES: Record<ProgressView['phase'], WireOperationPhase> = {
  starting: 'OPERATION_PHASE_STARTING',
  draining: 'OPERATION_PHASE_DRAINING',
  replaced: 'OPERATION_PHASE_REPLACED',
  failed: 'OPERATION_PHASE_FAILED',
  done: 'OPERATION_PHASE_DONE',
  unknown: 'OPERATION_PHASE_UNSPECIFIED',
};
const PHASES = reverse(WIRE_PHASES);

const WIRE_LOOP_STATES: Record<StackView['state'], WireLoopState> = {
  idle: 'LOOP_STATE_IDLE',
  busy: 'LOOP_STATE_BUSY',
  blocked: 'LOOP_STATE_BLOCKED',
  unknown: 'LOOP_STATE_UNSPECIFIED',
};
const LOOP_STATES = reverse(WIRE_LOOP_STATES);

const WIRE_STREAMS: Record<LogEntry['stream'], WireLogStream> = { stdout: 'LOG_STREAM_STDOUT', stderr: 'LOG_STREAM_STDERR' };

function reverse<K extends string, V extends string>(table: Record<K, V>): Map<string, K> {
  return new Map(Object.entries(table).map(([key, wire]) => [wire as string, key as K]));
}

export function encodeFrame(frame: StackFrame): WireStackFrame {
  return { functionName: frame.functionName, url: frame.url, line: frame.line, column: frame.column };
}

export function decodeFrame(wire: WireStackFrame): StackFrame {
  return { functionName: wire.functionName ?? '', url: wire.url ?? '', line: wire.line ?? 0, column: wire.column ?? 0 };
}

export function encodeBlocked(report: BlockedInfo): WireBlockedReport {
  return { time: report.time, blockedMs: report.blockedMs, frames: report.stack.map(encodeFrame), pid: report.pid };
}

export function decodeBlocked(wire: WireBlockedReport | null | undefined): BlockedView | null {
  if (!wire) return null;
  // A master older than the field sends no pid: 0, as a worker with no process reads.
  return { time: wire.time, blockedMs: wire.blockedMs, frames: (wire.frames ?? []).map(decodeFrame), pid: wire.pid ?? 0 };
}

/** A step of an operation; `done` and `replaced` only come from the handler's final message. */
export function encodeProgress(progress: OperationProgress | ProgressView): WireOperationProgress {
  return {
    id: progress.id,
    phase: WIRE_PHASES[progress.phase] ?? 'OPERATION_PHASE_UNSPECIFIED',
    pid: progress.pid,
    generation: progress.generation,
    message: progress.message,
    replaced: 'replaced' in progress ? progress.replaced : 0,
    killed: progress.killed ? encodeKilled(progress.killed) : null,
  };
}

export function decodeProgress(wire: WireOperationProgress): ProgressView {
  return {
    id: wire.id,
    phase: PHASES.get(wire.phase) ?? 'unknown',
    pid: wire.pid,
    generation: wire.generation,
    message: wire.message,
    replaced: wire.replaced ?? 0,
    killed: wire.killed ? decodeKilled(wire.killed) : null,
  };
}

function encodeKilled(killed: KilledWorker): WireKilledWorker {
  return { id: killed.id, pid: killed.pid, message: killed.message };
}

function decodeKilled(wire: WireKilledWorker): KilledWorker {
  return { id: wire.id ?? 0, pid: wire.pid ?? 0, message: wire.message ?? '' };
}

export function encodeStopOutcome(outcome: StopOutcome): WireStopOutcome {
  return { exitCode: outcome.exitCode, killed: outcome.killed.map(encodeKilled) };
}

/** Null from a master that did not say (one older than the field, or a Stop that did not wait). */
export function decodeStopOutcome(wire: WireStopOutcome | null | undefined): StopOutcome | null {
  if (!wire) return null;
  return { exitCode: wire.exitCode ?? 0, killed: (wire.killed ?? []).map(decodeKilled) };
}

export function encodeScale(outcome: ScaleOutcome): WireScaleReply {
  return { workers: outcome.workers, killed: outcome.killed.map(encodeKilled) };
}

/** A master older than `killed` names none. */
export function decodeScale(wire: WireScaleReply): ScaleOutcome {
  return { workers: wire.workers, killed: (wire.killed ?? []).map(decodeKilled) };
}

export function encodeStack(report: StackReport): WireStackReply {
  return { state: WIRE_LOOP_STATES[report.state] ?? 'LOOP_STATE_UNSPECIFIED', frames: report.stack.map(encodeFrame) };
}

export function decodeStack(wire: WireStackReply): StackView {
  return { state: LOOP_STATES.get(wire.state) ?? 'unknown', frames: (wire.frames ?? []).map(decodeFrame) };
}

export function encodeLogEntry(entry: LogEntry): WireLogEntry {
  const time = Date.parse(entry.time);
  return {
    time: Number.isFinite(time) ? time : 0,
    worker: entry.worker,
    pid: entry.pid,
    stream: WIRE_STREAMS[entry.stream] ?? 'LOG_STREAM_UNSPECIFIED',
    message: entry.message,
  };
}

export function decodeLogEntry(wire: WireLogEntry): LogView {
  return {
    time: new Date(wire.time).toISOString(),
    worker: wire.worker,
    pid: wire.pid,
    stream: wire.stream === 'LOG_STREAM_STDERR' ? 'stderr' : 'stdout',
    message: wire.message,
  };
}

/** How the profile's JSON is cut for the stream: well under gRPC's 4 MiB message limit. */
export const PROFILE_CHUNK_BYTES = 512 * 1024;

/** A ProfileOutcome as the stream's messages: the profile's JSON in pieces, or one `blocked`. */
export function encodeProfile(outcome: ProfileOutcome): WireProfileChunk[] {
  if (outcome.blocked) return [{ data: null, blocked: encodeStack(outcome.blocked), blockedMs: outcome.blocked.blockedMs }];
  const json = Buffer.from(JSON.stringify(outcome.profile));
  const chunks: WireProfileChunk[] = [];
  for (let offset = 0; offset < json.length; offset += PROFILE_CHUNK_BYTES) chunks.push({ data: json.subarray(offset, offset + PROFILE_CHUNK_BYTES), blocked: null, blockedMs: 0 });
  return chunks;
}

export function encodeLoop(worker: number, outcome: LoopOutcome): WireLoopReply {
  if (outcome.blocked) {
    return { worker, durationMs: 0, phases: {}, iterationsPerSec: 0, callbacks: [], overheadPct: 0, blocked: encodeStack(outcome.blocked), blockedMs: outcome.blocked.blockedMs };
  }
  const { breakdown } = outcome;
  return {
    worker,
    durationMs: breakdown.durationMs,
    phases: Object.fromEntries(Object.entries(breakdown.phases).map(([name, phase]) => [name, { ...phase }])),
    iterationsPerSec: breakdown.iterationsPerSec,
    callbacks: breakdown.callbacks.map((callback) => ({ ...callback })),
    overheadPct: breakdown.overheadPct,
    blocked: null,
    blockedMs: 0,
  };
}

export function decodeLoop(wire: WireLoopReply): LoopView {
  if (wire.blocked) return { worker: wire.worker, blocked: { ...decodeStack(wire.blocked), blockedMs: wire.blockedMs } };
  const phase = (name: LoopPhaseName): PhaseTime => {
    const found = wire.phases?.[name];
    return { ms: found?.ms ?? 0, msPerSec: found?.msPerSec ?? 0, count: found?.count ?? 0 };
  };
  return {
    worker: wire.worker,
    durationMs: wire.durationMs,
    phases: Object.fromEntries(LOOP_PHASES.map((name) => [name, phase(name)])) as Record<LoopPhaseName, PhaseTime>,
    iterationsPerSec: wire.iterationsPerSec,
    callbacks: (wire.callbacks ?? []).map((callback) => ({ ...callback })),
    overheadPct: wire.overheadPct,
  };
}

const LOOP_PHASES: readonly LoopPhaseName[] = ['timers', 'pending', 'poll', 'check', 'close', 'nextTick', 'microtasks', 'idle'];
