// The native helper (native/clusterd.c), when the build could compile it: the process calls Node
// does not expose. Loaded by the master and by every worker's runtime; nothing else needs it, and
// clusterd runs without it (each caller says what it does instead).
import { createRequire } from 'node:module';
import { getSystemErrorName } from 'node:util';

export interface NativeHelper {
  /** setpgid(2): 0, or a negative errno. */
  setpgid(pid: number, pgid: number): number;
  /** prctl(PR_SET_CHILD_SUBREAPER): 0, or a negative errno (-ENOSYS off Linux). */
  setChildSubreaper(on: boolean): number;
  /** waitpid(pid, WNOHANG) for one process: its end once it has ended, else null. */
  reap(pid: number): { pid: number; code: number; signal: number } | null;
  /** TCP_NODELAY on socket `fd` of process `pid` (pidfd_getfd): 0, or a negative errno (-ENOSYS off Linux). */
  setRemoteNoDelay(pid: number, fd: number): number;
  /** One datagram to unix socket `path` ('@' for an abstract name): 0, or a negative errno. Absent from helpers built before it. */
  notify?(path: string, message: string): number;
  /** shutdown(SHUT_RD) of listening socket `fd`, for every process holding a copy: 0, or a negative errno. Absent from helpers built before it. */
  stopListening?(fd: number): number;
  /** The backlog listening TCP socket `fd` was given (TCP_INFO, Linux), or a negative errno. Absent from helpers built before it. */
  listenBacklog?(fd: number): number;
  /** dup2(2): `target` becomes a copy of `fd`: 0, or a negative errno. Absent from helpers built before it. */
  dup2?(fd: number, target: number): number;
}

let helper: NativeHelper | null | undefined;
let why = '';

/** The helper, or null (then nativeUnavailable() says why). */
export function nativeHelper(): NativeHelper | null {
  if (helper !== undefined) return helper;
  // dist/<folder>/*.js and dist/bundle/*.js sit one level below dist/, next to dist/native/;
  // run from source (tests), this file is src/system/native.ts.
  const path = import.meta.url.endsWith('.ts') ? '../../dist/native/clusterd.node' : '../native/clusterd.node';
  try {
    helper = createRequire(import.meta.url)(path) as NativeHelper;
  } catch (error) {
    helper = null;
    // Not there is the usual case (no compiler, install scripts not run): say so plainly, not as
    // Node's "Cannot find module" with its require stack.
    const { code, message } = error as NodeJS.ErrnoException;
    why = code === 'MODULE_NOT_FOUND' ? 'not built' : (message.split('\n')[0] ?? 'not built');
  }
  return helper;
}

/** Why the helper is not there (null when it is). */
export function nativeUnavailable(): string | null {
  return nativeHelper() === null ? why : null;
}

/** A negative errno the helper returns, by the name Node's errors give it (`ENOENT`), as clusterd's other lines say one. */
export function errnoName(result: number): string {
  try {
    return getSystemErrorName(result);
  } catch {
    return `errno ${-result}`;
  }
}
