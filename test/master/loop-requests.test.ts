// `clusterd loop`'s answer is waited for while the worker's loop turns: a busy worker (a 2 s window took
// 3.3-7.4 s of wall time under load) or a booting one answered after the fixed 5 s margin, and `loop`
// failed with exit 1, "did not answer ... (its loop is blocked?)", while its loop turned.
import test from 'ava';
import { once } from 'node:events';
import { EventEmitter } from 'node:events';
import { ExitCode } from '../../src/exit-codes.js';
import { ClusterdError } from '../../src/errors.js';
import { LoopRequests } from '../../src/master/loop-requests.js';
import type { LoopBreakdown } from '../../src/loop/types.js';
import type { MasterMessage } from '../../src/protocol.js';

/** A worker whose loop turns (or not) as the test says, and which tells when it was asked, and when its loop was looked at. */
function fakeWorker() {
  const asked = new EventEmitter();
  const worker = {
    id: 1,
    pid: 4242,
    turns: true,
    send(message: MasterMessage): boolean {
      asked.emit('message', message);
      return true;
    },
    turning: () => {
      asked.emit('turning');
      return worker.turns;
    },
  };
  return { worker, asked };
}

const breakdown = { durationMs: 50 } as LoopBreakdown;

test('an answer that comes past the margin is taken while the worker\'s loop turns', async (t) => {
  const { worker, asked } = fakeWorker();
  // The answer comes once the first margin (50 ms past the window) is over: the master then looks at the loop.
  const loops = new LoopRequests(worker, { answerMs: 50, answerMaxMs: 5000 });
  const sent = once(asked, 'message');
  const answer = loops.measure(50);
  const [message] = (await sent) as [{ seq: number }];
  // Given up on at the margin, the answer rejects: the race ends there.
  await Promise.race([once(asked, 'turning'), answer]);
  loops.answer(message.seq, breakdown);
  t.is(await answer, breakdown);
});

test('a worker whose loop does not turn at the margin is given up on then; one that turns, at the bound, with a timeout\'s exit code', async (t) => {
  const { worker } = fakeWorker();
  worker.turns = false;
  const stuck = await t.throwsAsync(new LoopRequests(worker, { answerMs: 50, answerMaxMs: 5000 }).measure(50), { instanceOf: ClusterdError });
  t.is(stuck.code, 'ERR_CLUSTERD_TIMEOUT');
  t.regex(stuck.message, /^worker 1 did not answer the measurement within [\d.]+ s of asking \(a 50 ms window\), and its loop does not turn/);

  worker.turns = true;
  const started = Date.now();
  const silent = await t.throwsAsync(new LoopRequests(worker, { answerMs: 50, answerMaxMs: 300 }).measure(50), { instanceOf: ClusterdError });
  t.true(Date.now() - started >= 350);
  t.is(silent.code, 'ERR_CLUSTERD_TIMEOUT');
  t.is(silent.exitCode, ExitCode.NOT_FOUND);
  t.regex(silent.message, /though its loop turns: try again$/);
});
