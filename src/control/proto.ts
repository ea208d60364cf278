// The Control service of proto/clusterd.proto, as a grpc-js service definition whose messages
// are plain objects shaped as described below (TO_OBJECT). The build turns the .proto into a
// protobufjs JSON descriptor (scripts/build-proto.mjs -> proto/clusterd.json), loaded here with
// protobufjs/light: a CLI command skips parsing the .proto and @grpc/proto-loader's reflection
// descriptors (about 90 ms of start-up on Node 20). A missing or stale JSON (the .proto edited
// since the build) falls back to parsing the .proto.
import * as grpc from '@grpc/grpc-js';
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs/light.js';
import { ClusterdError } from '../errors.js';
import type { CallbackTime, PhaseTime } from '../loop/types.js';
import type { BlockedSite } from '../master/blocked-sites.js';
import type { ClusterStatus, ClusterTotals, MasterUsage, StopTerms, WaitingWorker } from '../master/status.js';

/** From dist/control or src/control alike: proto/ sits at the package root. */
export const PROTO_PATH = fileURLToPath(new URL('../../proto/clusterd.proto', import.meta.url));
const DESCRIPTOR_PATH = fileURLToPath(new URL('../../proto/clusterd.json', import.meta.url));
const SERVICE = 'clusterd.v1.Control';

/** How decoded messages become plain objects (what @grpc/proto-loader's options of the same names do). */
const TO_OBJECT: protobuf.IConversionOptions = {
  longs: Number, // int64 fields (epoch ms, bytes) fit in a double for any value they take
  enums: String,
  defaults: true, // absent scalars read as 0 / '' and absent messages as null
  oneofs: true,
};

export interface ControlService {
  definition: grpc.ServiceDefinition;
  Client: grpc.ServiceClientConstructor;
}

let loaded: ControlService | null = null;

/** The Control service of clusterd.v1, loaded once per process. */
export function controlService(): ControlService {
  if (loaded) return loaded;
  // grpc-js logs failures (a bind that failed, a peer that hung up) on stderr itself; clusterd
  // reports them as its own errors instead. GRPC_VERBOSITY=DEBUG still turns its log on.
  if (!process.env.GRPC_VERBOSITY) grpc.setLogVerbosity(grpc.logVerbosity.NONE);
  let service: protobuf.Service;
  try {
    service = loadRoot().lookupService(SERVICE);
  } catch (error) {
    throw new ClusterdError('ERR_CLUSTERD_PROTO', `cannot load the control-plane API ${PROTO_PATH}: ${(error as Error).message}`, { cause: error });
  }
  const definition: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const method of service.methodsArray) {
    const request = method.resolvedRequestType!;
    const response = method.resolvedResponseType!;
    definition[method.name] = {
      path: `/${SERVICE}/${method.name}`,
      requestStream: Boolean(method.requestStream),
      responseStream: Boolean(method.responseStream),
      requestSerialize: serializer(request),
      requestDeserialize: deserializer(request),
      responseSerialize: serializer(response),
      responseDeserialize: deserializer(response),
      originalName: method.name.charAt(0).toLowerCase() + method.name.slice(1),
    };
  }
  loaded = { definition, Client: grpc.makeClientConstructor(definition, SERVICE) };
  return loaded;
}

/**
 * The protobufjs root of the API: from the build's JSON descriptor when it is at least as new as
 * the .proto, else parsed from the .proto itself. The paths are parameters for the tests.
 */
export function loadRoot(protoPath = PROTO_PATH, descriptorPath = DESCRIPTOR_PATH): protobuf.Root {
  let root: protobuf.Root;
  if (isFresh(descriptorPath, protoPath)) {
    root = protobuf.Root.fromJSON(JSON.parse(readFileSync(descriptorPath, 'utf8')) as protobuf.INamespace);
  } else {
    // Run from a checkout whose build is older than the .proto: the full protobufjs parses it.
    const full = createRequire(import.meta.url)('protobufjs') as typeof protobuf;
    root = new full.Root().loadSync(protoPath, { keepCase: false });
  }
  root.resolveAll();
  return root;
}

function isFresh(descriptorPath: string, protoPath: string): boolean {
  try {
    return statSync(descriptorPath).mtimeMs >= statSync(protoPath).mtimeMs;
  } catch {
    return false;
  }
}

function serializer(type: protobuf.Type): (value: object) => Buffer {
  return (value) => {
    if (Array.isArray(value)) throw new TypeError(`cannot serialize an array as ${type.name}`);
    const bytes = type.encode(type.fromObject(value)).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer(type: protobuf.Type): (bytes: Buffer) => object {
  return (bytes) => type.toObject(type.decode(bytes), TO_OBJECT);
}

// The messages as plain objects. Outgoing objects may leave fields out; incoming ones have every
// scalar (defaults: true) and null for absent messages, hence the `| null`s.

export type WireWorkerState =
  | 'WORKER_STATE_UNSPECIFIED'
  | 'WORKER_STATE_STARTING'
  | 'WORKER_STATE_READY'
  | 'WORKER_STATE_STOPPING'
  | 'WORKER_STATE_EXITED'
  | 'WORKER_STATE_NOT_LISTENING';

export interface WireStatusRequest {
  includeHistory: boolean;
}

export interface WireWatchRequest {
  includeHistory: boolean;
  minIntervalMs: number;
}

export interface WireLag {
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface WireSample {
  time: number;
  intervalMs: number;
  lag: WireLag | null;
  elu: number;
  loop: { iterationsPerSec: number; eventsPerSec: number; eventsWaiting: number } | null;
  cpu: number;
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number } | null;
  resources: Record<string, number> | null;
  http: { rps: number; requests: number; inflight: number; connections: number } | null;
}

export interface WireHistoryPoint {
  time: number;
  lagP99: number;
  lagMax: number;
  elu: number;
  cpu: number;
  rps: number;
}

export interface WireWorker {
  id: number;
  pid: number;
  state: WireWorkerState | string;
  generation: number;
  startedAt: number;
  uptimeMs: number;
  restarts: number;
  sample: WireSample | null;
  history: WireHistoryPoint[] | null;
  lastBlocked?: WireBlockedReport | null;
  blockedSites?: WireBlockedSite[] | null;
  blocks?: number;
  /** Absent from a master older than the field. */
  blockedMs?: number;
  /** Absent from a master older than the field. */
  memoryReplacements?: number;
}

/** A blocking site has the master's shape on the wire. */
export type WireBlockedSite = BlockedSite;

/** The wire's totals have the master's shape; `blocked` is absent from a master older than the field. */
export type WireTotals = Omit<ClusterTotals, 'blocked'> & { blocked?: number };

/** The master's ClusterStatus as decoded: repeated and message fields may be absent (null); `counts` stays in the master. */
export interface WireClusterStatus extends Omit<ClusterStatus, 'workers' | 'totals' | 'addresses' | 'counts' | 'waiting' | 'master' | 'stopTerms'> {
  workers: WireWorker[] | null;
  totals: WireTotals | null;
  /** Absent from a master older than the field. */
  addresses: string[] | null;
  /** `blockedSites` is absent from a master older than the field. */
  waiting: (Omit<WaitingWorker, 'blockedSites'> & { blockedSites?: WireBlockedSite[] | null })[] | null;
  /** Absent (empty) from a master older than the field. */
  runtimePrefixes?: string[] | null;
  /** Absent (null) from a master older than the field. */
  master?: MasterUsage | null;
  /** Absent (null) from a master older than the field. */
  stopTerms?: StopTerms | null;
}

export interface WireStackFrame {
  functionName: string;
  url: string;
  line: number;
  column: number;
}

export interface WireBlockedReport {
  time: number;
  blockedMs: number;
  frames: WireStackFrame[] | null;
  /** Absent from a master older than the field. */
  pid?: number;
}

export type WireOperationPhase =
  | 'OPERATION_PHASE_UNSPECIFIED'
  | 'OPERATION_PHASE_STARTING'
  | 'OPERATION_PHASE_DRAINING'
  | 'OPERATION_PHASE_REPLACED'
  | 'OPERATION_PHASE_FAILED'
  | 'OPERATION_PHASE_DONE';

export interface WireReloadRequest {
  parallel: number;
}

export interface WireRestartRequest {
  id: number;
}

export interface WireOperationProgress {
  id: number;
  phase: WireOperationPhase | string;
  pid: number;
  generation: number;
  message: string;
  replaced: number;
  /** Absent (null) but on a REPLACED step whose old worker was killed at --grace. */
  killed?: WireKilledWorker | null;
}

export interface WireKilledWorker {
  id: number;
  pid: number;
  message: string;
}

export interface WireScaleRequest {
  spec: string;
}

export interface WireScaleReply {
  workers: number;
  /** Empty (or null) from a master older than the field. */
  killed?: WireKilledWorker[] | null;
}

export interface WireStopRequest {
  waitForOutcome?: boolean;
}

export interface WireStopReply {
  masterPid: number;
  graceMs: number;
  /** Only with waitForOutcome, from a master that knows the field: null otherwise. */
  outcome?: WireStopOutcome | null;
}

export interface WireStopOutcome {
  exitCode: number;
  killed: WireKilledWorker[] | null;
}

export interface WireStackRequest {
  id: number;
}

export type WireLoopState = 'LOOP_STATE_UNSPECIFIED' | 'LOOP_STATE_IDLE' | 'LOOP_STATE_BUSY' | 'LOOP_STATE_BLOCKED';

export interface WireStackReply {
  state: WireLoopState | string;
  frames: WireStackFrame[] | null;
}

export interface WireProfileRequest {
  id: number;
  durationMs: number;
  intervalUs: number;
}

export interface WireProfileChunk {
  data: Uint8Array | null;
  blocked: WireStackReply | null;
  blockedMs: number;
}

export interface WireLoopRequest {
  id: number;
  durationMs: number;
}

/** A phase's time and a callback's entry have the worker's shapes on the wire. */
export type WireLoopPhase = PhaseTime;
export type WireLoopCallback = CallbackTime;

export interface WireLoopReply {
  worker: number;
  durationMs: number;
  phases: Record<string, WireLoopPhase> | null;
  iterationsPerSec: number;
  callbacks: WireLoopCallback[] | null;
  overheadPct: number;
  blocked: WireStackReply | null;
  blockedMs: number;
}

export interface WireDashboardRequest {
  /** Absent or empty from a client older than the field. */
  markerKinds?: string[] | null;
}

export interface WireDashboardChunk {
  json: string;
  end: boolean;
}

export interface WireLogsRequest {
  follow: boolean;
  worker: number;
  lines: number;
}

export type WireLogStream = 'LOG_STREAM_UNSPECIFIED' | 'LOG_STREAM_STDOUT' | 'LOG_STREAM_STDERR';

export interface WireLogEntry {
  time: number;
  worker: number;
  pid: number;
  stream: WireLogStream | string;
  message: string;
}
