// `clusterd stop` when the Stop reply is lost: a master whose stop is quick closes its control plane
// as it exits, and under load its reply was seen to fail with UNAVAILABLE (exit 7, or `stop --all`
// saying "had stopped already" of a cluster it had just stopped). Stop is asked once more; a second
// refusal means the master is going, and the caller waits for it to be gone as after any stop.
import test from 'ava';
import { askToStop, outcomeOf } from '../../src/cli/stop.js';
import { ExitCode } from '../../src/exit-codes.js';
import { NOT_RUNNING } from '../../src/control/status-codes.js';
import { ClusterdError } from '../../src/errors.js';

function client(outcomes: Array<{ masterPid: number; graceMs: number } | ClusterdError>): { stop(): Promise<{ masterPid: number; graceMs: number }>; calls: number } {
  const stub = {
    calls: 0,
    async stop() {
      const outcome = outcomes[stub.calls++]!;
      if (outcome instanceof ClusterdError) throw outcome;
      return outcome;
    },
  };
  return stub;
}

const dropped = (): ClusterdError => new ClusterdError(NOT_RUNNING, 'no cluster answers at /run/x.sock (Connection dropped)');

test('a reply lost once: asked again, and the second reply is used', async (t) => {
  const stub = client([dropped(), { masterPid: 42, graceMs: 1000 }]);
  t.deepEqual(await askToStop(stub), { masterPid: 42, graceMs: 1000 });
  t.is(stub.calls, 2);
});

test('refused twice: the master is going, null (the caller waits for it)', async (t) => {
  const stub = client([dropped(), dropped()]);
  t.is(await askToStop(stub), null);
  t.is(stub.calls, 2);
});

test('any other failure is the answer, asked once', async (t) => {
  const stub = client([new ClusterdError('ERR_CLUSTERD_TIMEOUT', 'the cluster at /run/x.sock did not answer in time')]);
  await t.throwsAsync(askToStop(stub), { message: /did not answer in time/ });
  t.is(stub.calls, 1);
});

test('how the stop went: workers killed make exit 5 (6 when forced); a master older than the outcome, or one that drained, 0', (t) => {
  const killed = [{ id: 1, pid: 41, message: 'worker 1 (pid 41): --grace 1s over: killed (SIGKILL), destroying 1 HTTP request in flight' }];
  t.deepEqual(outcomeOf({ exitCode: ExitCode.GRACE_EXPIRED, killed }), { killed: [killed[0]!.message], exitCode: ExitCode.GRACE_EXPIRED });
  t.deepEqual(outcomeOf({ exitCode: ExitCode.FORCED, killed }), { killed: [killed[0]!.message], exitCode: ExitCode.FORCED });
  t.deepEqual(outcomeOf({ exitCode: ExitCode.OK, killed: [] }), { killed: [], exitCode: ExitCode.OK });
  t.deepEqual(outcomeOf(null), { killed: [], exitCode: ExitCode.OK });
});
