// MasterControl.stopped(), which every Stop with wait_for_outcome awaits: one listener on the
// supervisor however many clients wait, so a dozen stopping at once raise no MaxListenersExceededWarning
// in the master's log.
import test from 'ava';
import { EventEmitter } from 'node:events';
import { MasterControl } from '../../src/master/control.js';
import type { LogSink } from '../../src/master/logs.js';
import type { Operations } from '../../src/master/operations.js';
import type { StopOutcome } from '../../src/master/status.js';
import type { Supervisor } from '../../src/master/supervisor.js';
import { ExitCode } from '../../src/exit-codes.js';

/** The part of a Supervisor that stopped() reads: its 'stopped' event and its outcome once stopped. */
class FakeSupervisor extends EventEmitter {
  stopOutcome: StopOutcome | null = null;
  onChange(): () => void {
    return () => {};
  }
}

test('twenty Stops waiting for the outcome add one listener between them, and each gets the outcome', async (t) => {
  const supervisor = new FakeSupervisor();
  const control = new MasterControl({ supervisor: supervisor as unknown as Supervisor, operations: {} as Operations, logs: {} as LogSink });
  t.teardown(() => control.dispose());
  const waiting = Array.from({ length: 20 }, () => control.stopped());
  t.is(supervisor.listenerCount('stopped'), 1);
  const outcome = { exitCode: ExitCode.GRACE_EXPIRED, killed: [{ id: 1, pid: 41, message: 'worker 1 (pid 41): --grace 1s over: killed (SIGKILL)' }] };
  supervisor.stopOutcome = outcome;
  supervisor.emit('stopped', outcome.exitCode, outcome);
  t.deepEqual(await Promise.all(waiting), Array.from({ length: 20 }, () => outcome));
  t.is(await control.stopped(), outcome, 'asked after the stop: at once');
});
