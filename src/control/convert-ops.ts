// The operations' messages (progress, stacks, blocked reports, log lines): master -> wire and
// wire -> what a client sees. Like convert.ts, field by field so the compiler catches a new one.
import type { BlockedInfo, LogEntry, OperationProgress, StackFrame, StackReport } from '../master/status.js';
import type {
  WireBlockedReport,
  WireLogEntry,
  WireLogStream,
  WireLoopState,
  WireOperationPhase,
  WireOperationProgress,
  WireStackFrame,
  WireStackReply,
} from './proto.js';
import type { BlockedView, LogView, ProgressView, StackView } from './types.js';


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
  return { time: report.time, blockedMs: report.blockedMs, frames: report.stack.map(encodeFrame) };
}

export function decodeBlocked(wire: WireBlockedReport | null | undefined): BlockedView | null {
  if (!wire) return null;
  return { time: wire.time, blockedMs: wire.blockedMs, frames: (wire.frames ?? []).map(decodeFrame) };
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
  };
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
