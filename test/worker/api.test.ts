// clusterd/worker's workerId(), in-process: the id only in the process the runtime marked as its
// worker, and only a whole number (the forked-child case with real processes is in app-children.test.ts).
import test from 'ava';
import { workerId } from '../../src/worker/api.js';

// The runtime's mark (src/protocol.ts), by name: what a worker's environment holds.
const WORKER_PID_ENV = 'CLUSTERD_WORKER_PID';

function withEnv(env: Record<string, string | undefined>, run: () => void): void {
  const before = Object.fromEntries(Object.keys(env).map((name) => [name, process.env[name]]));
  const set = (values: Record<string, string | undefined>): void => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  set(env);
  try {
    run();
  } finally {
    set(before);
  }
}

test('workerId() is the id in the worker the runtime marked, undefined elsewhere, and never NaN', (t) => {
  const self = String(process.pid);
  withEnv({ CLUSTERD_WORKER_ID: '3', [WORKER_PID_ENV]: self }, () => t.is(workerId(), 3));
  // A process the app forked: the id inherited, the mark its parent's.
  withEnv({ CLUSTERD_WORKER_ID: '3', [WORKER_PID_ENV]: String(process.pid + 1) }, () => t.is(workerId(), undefined));
  withEnv({ CLUSTERD_WORKER_ID: '3', [WORKER_PID_ENV]: undefined }, () => t.is(workerId(), undefined));
  for (const text of ['abc', '', '0', '-1', '1.5', ' 2', '1e3', '99999999999999999999']) {
    withEnv({ CLUSTERD_WORKER_ID: text, [WORKER_PID_ENV]: self }, () => t.is(workerId(), undefined, JSON.stringify(text)));
  }
  withEnv({ CLUSTERD_WORKER_ID: undefined, [WORKER_PID_ENV]: undefined }, () => t.is(workerId(), undefined));
});
