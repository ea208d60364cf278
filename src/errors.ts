import { ExitCode, type ExitCodeValue } from './exit-codes.js';

/**
 * Every error code clusterd raises, in one table: the exit code the CLI leaves with, and the gRPC
 * status it travels as when the master raises it for a control call (the code itself travels too,
 * in the status's metadata, and the client reads the exit code from this table by it: the gRPC
 * status is for other clients). The README's "Exit codes" tables say the same in prose.
 */
export const ERROR_CODES = {
  ERR_CLUSTERD_USAGE: { exitCode: ExitCode.USAGE, grpc: 'INVALID_ARGUMENT' },
  ERR_CLUSTERD_AMBIGUOUS: { exitCode: ExitCode.USAGE, grpc: 'INVALID_ARGUMENT' },
  ERR_CLUSTERD_NAME_IN_USE: { exitCode: ExitCode.USAGE, grpc: 'ALREADY_EXISTS' },
  ERR_CLUSTERD_RUNTIME_DIR: { exitCode: ExitCode.USAGE, grpc: 'FAILED_PRECONDITION' },
  /** A TypeScript entry cannot be run as its project says: a tsconfig.json tsc would refuse, a transpiler that does not load. */
  ERR_CLUSTERD_TYPESCRIPT: { exitCode: ExitCode.USAGE, grpc: 'FAILED_PRECONDITION' },
  ERR_CLUSTERD_BOOT: { exitCode: ExitCode.BOOT_FAILED, grpc: 'FAILED_PRECONDITION' },
  ERR_CLUSTERD_LISTEN: { exitCode: ExitCode.LISTEN_FAILED, grpc: 'FAILED_PRECONDITION' },
  ERR_CLUSTERD_CONTROL_LISTEN: { exitCode: ExitCode.LISTEN_FAILED, grpc: 'FAILED_PRECONDITION' },
  ERR_CLUSTERD_NOT_FOUND: { exitCode: ExitCode.NOT_FOUND, grpc: 'NOT_FOUND' },
  ERR_CLUSTERD_NOT_RUNNING: { exitCode: ExitCode.NOT_FOUND, grpc: 'UNAVAILABLE' },
  ERR_CLUSTERD_NO_WORKER: { exitCode: ExitCode.NOT_FOUND, grpc: 'NOT_FOUND' },
  ERR_CLUSTERD_STOPPING: { exitCode: ExitCode.NOT_FOUND, grpc: 'UNAVAILABLE' },
  ERR_CLUSTERD_TIMEOUT: { exitCode: ExitCode.NOT_FOUND, grpc: 'DEADLINE_EXCEEDED' },
  ERR_CLUSTERD_UNAUTHENTICATED: { exitCode: ExitCode.UNAUTHENTICATED, grpc: 'UNAUTHENTICATED' },
  ERR_CLUSTERD_BUSY: { exitCode: ExitCode.BUSY, grpc: 'ABORTED' },
  ERR_CLUSTERD_STOP_TIMEOUT: { exitCode: ExitCode.STOP_TIMEOUT, grpc: 'DEADLINE_EXCEEDED' },
  /** The worker exited (before or while its stack or profile was being taken). */
  ERR_CLUSTERD_WORKER_GONE: { exitCode: ExitCode.NOT_FOUND, grpc: 'NOT_FOUND' },
  /** The worker exited while it was being profiled or measured. */
  ERR_CLUSTERD_WORKER_EXITED: { exitCode: ExitCode.BOOT_FAILED, grpc: 'FAILED_PRECONDITION' },
  /** The worker's inspector could not be opened or reached, or its main thread stayed in native code. */
  ERR_CLUSTERD_INSPECTOR: { exitCode: ExitCode.INTERNAL, grpc: 'UNAVAILABLE' },
  ERR_CLUSTERD_UNAVAILABLE: { exitCode: ExitCode.INTERNAL, grpc: 'UNIMPLEMENTED' },
  ERR_CLUSTERD_UNIMPLEMENTED: { exitCode: ExitCode.INTERNAL, grpc: 'UNIMPLEMENTED' },
  ERR_CLUSTERD_CONTROL: { exitCode: ExitCode.INTERNAL, grpc: 'INTERNAL' },
  ERR_CLUSTERD_PROTO: { exitCode: ExitCode.INTERNAL, grpc: 'INTERNAL' },
  /** start()'s master went before its cluster was ready without saying why (it crashed, was killed, or could not be spawned). */
  ERR_CLUSTERD_START: { exitCode: ExitCode.INTERNAL, grpc: 'INTERNAL' },
} as const satisfies Record<string, { exitCode: ExitCodeValue; grpc: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Whether a code read off the wire is one of ours (a newer master may send codes this client lacks). */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

/** Every failure clusterd expects carries a stable code, and so the exit code the CLI should use. */
export class ClusterdError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, { cause }: { cause?: unknown } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ClusterdError';
    this.code = code;
  }

  /** The exit code the CLI leaves with (ERROR_CODES'; a StartError's is its master's own). */
  get exitCode(): number {
    return ERROR_CODES[this.code].exitCode;
  }
}

/** A flag or option value the user gave is not acceptable. */
export class UsageError extends ClusterdError {
  constructor(message: string, { cause }: { cause?: unknown } = {}) {
    super('ERR_CLUSTERD_USAGE', message, { cause });
    this.name = 'UsageError';
  }
}

/** A TypeScript entry's project cannot be run as it is: refused before any worker starts. */
export class TypeScriptError extends ClusterdError {
  constructor(message: string, cause?: unknown) {
    super('ERR_CLUSTERD_TYPESCRIPT', message, { cause });
    this.name = 'TypeScriptError';
  }
}

/** The app failed to start often enough in a row that restarting it again is pointless. */
export class BootError extends ClusterdError {
  readonly lastOutput: string[];

  constructor(message: string, lastOutput: string[]) {
    super('ERR_CLUSTERD_BOOT', message);
    this.name = 'BootError';
    this.lastOutput = lastOutput;
  }
}

/** The master could not bind an address the app asked for. */
export class ListenError extends ClusterdError {
  constructor(message: string, cause?: unknown) {
    super('ERR_CLUSTERD_LISTEN', message, { cause });
    this.name = 'ListenError';
  }
}

/** `text` cut to at most `max` characters, the last of them `…` when it was longer. */
export function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * Text that came from a worker (a function's name, a script's URL, a resource type) or a client (a
 * scale spec), for a terminal or a log line:
 * control characters (ESC, newlines, C1) and the bidirectional overrides are shown as escapes, so
 * that the app, which is not trusted, cannot recolour, retitle or clear the operator's terminal or
 * forge a line of clusterd's output.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what it looks for
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (char) => {
    const code = char.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * A value as a message quotes it: in backticks, or as a JSON string where backticks would hide what
 * it holds (empty, spaces at either end, control characters): \`--grace ' '\` read "got \`\`".
 */
export function quoted(value: unknown): string {
  const text = String(value);
  // eslint-disable-next-line no-control-regex
  return text === '' || text.trim() !== text || /[\x00-\x1f\x7f]/.test(text) ? JSON.stringify(text) : `\`${text}\``;
}

/** Renders any thrown value as the one line a CLI user sees. */
export function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return firstLine(text.split('\n'));
}

/**
 * The first line of a message, with the one after it when the first only announces it (esbuild's
 * `Transform failed with 1 error:` then `app.ts:1:18: ERROR: Unexpected ";"`).
 */
export function firstLine(lines: readonly string[], at = 0): string {
  const first = lines[at]?.trim() ?? '';
  const next = lines[at + 1]?.trim();
  return first.endsWith(':') && next && !next.startsWith('at ') ? `${first} ${next}` : first;
}
