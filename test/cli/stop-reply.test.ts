// `clusterd stop` when the Stop reply is lost: a master whose stop is quick closes its control plane
// as it exits, and under load its reply was seen to fail with UNAVAILABLE (exit 7, or `stop --all`
// saying "had stopped already" of a cluster it had just stopped). Stop is asked once more; a second
// refusal means the master is going, and the caller waits for it to be gone as after any stop.
import test from 'ava';
import { askForOutcome, askToStop, outcomeOf } from '../../src/cli/stop.js';
import type { StopReply } from '../../src/control/client.js';
import { ExitCode } from '../../src/exit-codes.js';
import { NOT_RUNNING } from '../../src/control/status-codes.js';
import { ClusterdError } from '../../src/errors.js';

function client(outcomes: Array<{ masterPid: number; graceMs: number } | ClusterdError>): { stop(): Promise<StopReply>; calls: number } {
  const stub = {
    calls: 0,
    async stop() {
      const outcome = outcomes[stub.calls++]!;
      if (outcome instanceof ClusterdError) throw outcome;
      return { ...outcome, outcome: null };
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

test('the master\'s exit code decides, not the lines: a forced stop that found every worker exited already kills none, and exits 6', (t) => {
  t.deepEqual(outcomeOf({ exitCode: ExitCode.FORCED, killed: [] }), { killed: [], exitCode: ExitCode.FORCED });
  t.deepEqual(outcomeOf({ exitCode: ExitCode.GRACE_EXPIRED, killed: [] }), { killed: [], exitCode: ExitCode.GRACE_EXPIRED });
});

/** A Stop that waits for the outcome: answers with `reply`, or never (a master gone without answering), cancelled by its signal. */
function waiting(replies: Array<StopReply | ClusterdError | 'never'>): { stop(options?: { signal?: AbortSignal }): Promise<StopReply>; calls: number } {
  const stub = {
    calls: 0,
    stop({ signal }: { signal?: AbortSignal } = {}) {
      const reply = replies[stub.calls++]!;
      if (reply instanceof ClusterdError) return Promise.reject(reply);
      if (reply !== 'never') return Promise.resolve(reply);
      return new Promise<StopReply>((_resolve, reject) => signal?.addEventListener('abort', () => reject(new ClusterdError('ERR_CLUSTERD_CONTROL', 'cancelled')), { once: true }));
    },
  };
  return stub;
}

const killedAtGrace = { exitCode: ExitCode.GRACE_EXPIRED, killed: [{ id: 1, pid: 41, message: 'worker 1 (pid 41): --grace 0ms over: killed (SIGKILL) without draining' }] };

test('waiting for the outcome: one call, and its outcome', async (t) => {
  const stub = waiting([{ masterPid: 42, graceMs: 0, outcome: killedAtGrace }]);
  t.deepEqual(await askForOutcome(stub, { timeoutMs: 5_000, gone: () => false }), { outcome: killedAtGrace, lost: false });
  t.is(stub.calls, 1);
});

test('the master gone without answering: lost, told from its exit, not waited for to the deadline', async (t) => {
  const stub = waiting(['never']);
  let polls = 0;
  // Far past the test's own timeout: only the exit can end the wait.
  t.deepEqual(await askForOutcome(stub, { timeoutMs: 3_600_000, gone: () => ++polls > 3 }), { outcome: null, lost: true });
  t.is(stub.calls, 1);
});

test('waiting, refused once: asked again, and that answer is used; refused twice: lost', async (t) => {
  const again = waiting([dropped(), { masterPid: 42, graceMs: 0, outcome: killedAtGrace }]);
  t.deepEqual(await askForOutcome(again, { timeoutMs: 5_000, gone: () => false }), { outcome: killedAtGrace, lost: false });
  t.is(again.calls, 2);
  const twice = waiting([dropped(), dropped()]);
  t.deepEqual(await askForOutcome(twice, { timeoutMs: 5_000, gone: () => false }), { outcome: null, lost: true });
  t.is(twice.calls, 2);
});

test('waiting, any other failure is the answer', async (t) => {
  const stub = waiting([new ClusterdError('ERR_CLUSTERD_UNAUTHENTICATED', 'the cluster at 10.0.0.5:7070 refused the call: bad token')]);
  await t.throwsAsync(askForOutcome(stub, { timeoutMs: 5_000, gone: () => false }), { message: /bad token/ });
  t.is(stub.calls, 1);
});
