// The onShutdown handlers an app registered, in one registry per process. It lives on globalThis,
// under a Symbol.for key: an app that imports `clusterd/worker` from a copy of clusterd of its own
// (a local dependency, while a global clusterd runs it) loads a second instance of this module, and
// its handlers must still be the ones the runtime runs.

/** Run on a graceful stop; clusterd waits for the promise it returns (within --grace). */
export type ShutdownHandler = () => void | Promise<void>;

interface Registration {
  handler: ShutdownHandler;
}

const KEY = Symbol.for('clusterd.worker.shutdown-handlers');

/** The registrations, in the order the app made them. */
function registrations(): Registration[] {
  const holder = globalThis as { [KEY]?: Registration[] };
  return (holder[KEY] ??= []);
}

/** Adds a handler; returns the function that removes it. */
export function register(handler: ShutdownHandler): () => void {
  const registration: Registration = { handler };
  registrations().push(registration);
  return () => {
    const list = registrations();
    const index = list.indexOf(registration);
    if (index >= 0) list.splice(index, 1);
  };
}

/**
 * Runs every handler, one after another, including those added meanwhile; a handler that throws
 * or rejects is reported on stderr and the next one runs. `pending()` counts the handlers not
 * finished; `done` resolves with whether all of them succeeded.
 */
export function runHandlers(): { pending(): number; done: Promise<boolean> } {
  const started = new Set<Registration>();
  let running = false;
  const waiting = (): Registration | undefined => registrations().find((registration) => !started.has(registration));
  const run = async (): Promise<boolean> => {
    let ok = true;
    for (let next = waiting(); next; next = waiting()) {
      started.add(next);
      running = true;
      try {
        await next.handler();
      } catch (error) {
        ok = false;
        // Its own line, so that the master's exit line quotes the error, not a frame.
        console.error('clusterd: an onShutdown handler failed (the worker will exit with code 1):');
        console.error(error);
      }
      running = false;
    }
    return ok;
  };
  return {
    pending: () => registrations().filter((registration) => !started.has(registration)).length + (running ? 1 : 0),
    done: run(),
  };
}
