// onShutdown's registry and how the runtime runs it, in-process: order, one at a time, failures,
// removal, handlers added while running, and one registry for every copy of the module.
import test from 'ava';
import { onShutdown } from '../../src/worker/api.js';
import { runHandlers } from '../../src/worker/handlers.js';

// One registry per process: these tests add and remove their own handlers, one test at a time.
const serial = test.serial;

serial('handlers run one after another, in the order added; pending() counts those not finished', async (t) => {
  const order: string[] = [];
  let release!: () => void;
  const removers = [
    onShutdown(async () => {
      order.push('first started');
      await new Promise<void>((resolve) => (release = resolve));
      order.push('first done');
    }),
    onShutdown(() => {
      order.push('second');
    }),
  ];
  t.teardown(() => removers.forEach((remove) => remove()));
  const run = runHandlers();
  // The first starts at once, synchronously; the second waits for it.
  t.deepEqual(order, ['first started']);
  t.is(run.pending(), 2);
  release();
  t.true(await run.done);
  t.deepEqual(order, ['first started', 'first done', 'second']);
  t.is(run.pending(), 0);
});

serial('a handler that throws or rejects makes the run fail, and the next ones still run', async (t) => {
  const ran: string[] = [];
  const removers = [
    onShutdown(() => {
      throw new Error('sync failure');
    }),
    onShutdown(() => Promise.reject(new Error('async failure'))),
    onShutdown(() => {
      ran.push('third');
    }),
  ];
  t.teardown(() => removers.forEach((remove) => remove()));
  // Each failure is printed on stderr (the worker's, which the master logs): caught here.
  const printed: unknown[][] = [];
  const { error } = console;
  console.error = (...args: unknown[]) => printed.push(args);
  t.teardown(() => (console.error = error));
  t.false(await runHandlers().done);
  t.deepEqual(ran, ['third']);
  t.deepEqual(
    printed.map(([first]) => (first instanceof Error ? first.message : first)),
    ['clusterd: an onShutdown handler failed (the worker will exit with code 1):', 'sync failure', 'clusterd: an onShutdown handler failed (the worker will exit with code 1):', 'async failure'],
  );
});

serial('a removed handler does not run; one added while the run goes on does', async (t) => {
  const ran: string[] = [];
  const removeLater = onShutdown(() => {
    ran.push('removed');
  });
  let removeAdded = (): void => {};
  const removeFirst = onShutdown(() => {
    ran.push('first');
    removeAdded = onShutdown(() => {
      ran.push('added meanwhile');
    });
  });
  t.teardown(() => [removeLater, removeFirst, removeAdded].forEach((remove) => remove()));
  removeLater();
  t.true(await runHandlers().done);
  t.deepEqual(ran, ['first', 'added meanwhile']);
});

serial('a second copy of the runtime\'s registry module registers with the same registry', async (t) => {
  // A query string makes Node load the module again: a second instance, as an app's own copy of
  // clusterd/worker (and the registry it imports) would be.
  const copy = (await import(`../../src/worker/handlers.js?copy=${Date.now()}`)) as typeof import('../../src/worker/handlers.js');
  t.not(copy.runHandlers, runHandlers);
  let ran = false;
  const remove = copy.register(() => {
    ran = true;
  });
  t.teardown(remove);
  t.true(await runHandlers().done);
  t.true(ran);
});

serial('onShutdown refuses what is not a function, in one line', (t) => {
  const error = t.throws(() => onShutdown('cleanup' as never), { instanceOf: TypeError });
  t.is(error!.message, 'Expected the onShutdown handler to be a function, got `string`');
});
