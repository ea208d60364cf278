// The master's one line when the native helper did not load: what clusterd does without it is
// said nowhere else by default (the install's own line is easy to miss, and npm may not have run
// the install script at all: --ignore-scripts, an allowScripts denial), so it is said at every start.
import { fileURLToPath } from 'node:url';
import type { LogSink } from './logs.js';

/** The script that builds the helper, by absolute path: dist/bundle/ and src/master/ are both two levels below the package. */
const BUILD_SCRIPT = fileURLToPath(new URL('../../scripts/build-native.mjs', import.meta.url));

/** The line for a master without the helper (`why` from nativeUnavailable()); `pid1` adds the advice for a container. */
export function nativeMissingText(why: string, { pid1 }: { pid1: boolean }): string {
  const lost = 'workers get sessions of their own (8-12% fewer connections/s where the kernel schedules by autogroup), no zombie reaping as PID 1, the master\'s own stderr does not follow a rotated --log-file';
  const init = pid1 ? '; as PID 1, run the container with an init (docker run --init) or build it' : '';
  return `native helper not loaded (${why}): ${lost}${init}; build it with \`node ${BUILD_SCRIPT}\` (needs a C compiler)`;
}

/** Logs nativeMissingText once, as a warning (stderr in the foreground, the log file with -d). */
export function noteNativeMissing({ why, logs }: { why: string; logs: LogSink }): void {
  logs.event('native-missing', nativeMissingText(why, { pid1: process.pid === 1 }), { why, buildScript: BUILD_SCRIPT }, 'warn');
}
