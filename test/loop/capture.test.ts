// The stack probe's answer comes from inside the worker (src/loop/capture.ts): parsed, and clipped.
import test from 'ava';
import { MAX_FUNCTION_CHARS, MAX_URL_CHARS, StackCapturer, type InspectorSession } from '../../src/loop/capture.js';

/** A session whose Runtime.evaluate answers with `sites`, as the probe would. */
function answering(sites: unknown[]): InspectorSession {
  return { post: () => Promise.resolve({ result: { value: [12.5, sites, false] } }) };
}

test('names and URLs past their limit are clipped: the master keeps them in every blocked site and stack', async (t) => {
  const capturer = new StackCapturer(answering([['f'.repeat(50_000), `node:${'u'.repeat(50_000)}`, 1, 2, null], ['main', 'node:internal/main', 3, 4, null]]), { timeoutMs: 1000 });
  const capture = await capturer.capture();
  const [huge, plain] = capture!.frames;
  t.is(huge!.functionName.length, MAX_FUNCTION_CHARS);
  t.is(huge!.url.length, MAX_URL_CHARS);
  t.true(huge!.functionName.endsWith('…'));
  t.like(plain, { functionName: 'main', url: 'node:internal/main', line: 3, column: 4 });
  t.is(capture!.at, 12.5);
});

test('an answer that is not a stack is refused', async (t) => {
  const capturer = new StackCapturer(answering([['f', 'u', -1, 2, null]]), { timeoutMs: 1000 });
  await t.throwsAsync(capturer.capture(), { message: /not a stack/ });
});
