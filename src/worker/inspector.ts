// The worker's half of opening its inspector when the app has taken SIGUSR1 (the master's half is
// src/master/inspector.ts). Node opens the inspector on SIGUSR1 only while no JavaScript listens for
// that signal: once the app adds a listener (a log reopen, a heap dump on demand), the master's SIGUSR1
// would run the app's handler and open nothing. So the first time the app adds one, this says so, and
// the master asks over IPC instead; the worker opens the inspector from JavaScript (inspector.open(),
// on 127.0.0.1 and the port the system picks, as --inspect-port=0 says; Node prints its address on
// stderr, which only the master reads), while its loop still turns, so that a loop that blocks later can
// still be read. Nothing is done for a worker the master did not start with its inspector flags (the
// app's own --inspect).
import * as channel from './channel.js';
import { WORKER_INSPECTOR_ARGS } from '../protocol.js';

export function installInspectorOpener(): void {
  if (!WORKER_INSPECTOR_ARGS.every((flag) => process.execArgv.includes(flag))) return;
  const added = (event: string | symbol): void => {
    if (event !== 'SIGUSR1') return;
    process.off('newListener', added);
    channel.send({ cmd: 'NODE_clusterd:usr1-taken' });
  };
  process.on('newListener', added);
  channel.on('NODE_clusterd:open-inspector', () => {
    // Loaded only when asked: most apps never take SIGUSR1.
    import('node:inspector')
      .then(({ default: inspector }) => {
        if (inspector.url() === undefined) inspector.open(undefined, '127.0.0.1', false);
      })
      .catch((error: unknown) => {
        // The master's wait for the address says it failed; this says why, in the worker's log.
        process.emitWarning(`clusterd: could not open the inspector: ${(error as Error).message}`);
      });
  });
}
