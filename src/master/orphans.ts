// As PID 1 (a container started without an init: `docker run image clusterd start app.js`), every
// process whose parent dies is reparented to the master: the app's own children left behind by a
// worker that exited, a double-forked helper, a shell's background job. The kernel keeps each of
// them as a zombie until PID 1 waits for it, and Node never waits for processes it did not spawn;
// enough zombies and the container runs out of pids. So, as PID 1, the master reaps them: on every
// SIGCHLD it reads /proc for zombies whose parent it is and that it did not start itself (those are
// libuv's to wait for: waiting for one here would steal its exit from the ChildProcess), and waits
// for each with the native helper's waitpid(pid, WNOHANG).
//
// Signals are not forwarded by this: a container's SIGTERM reaches PID 1 alone, and the master's
// own stop drains each worker once (a worker's process group hears from the master, never twice).
import { readdirSync, readFileSync } from 'node:fs';
import { nativeHelper } from '../system/native.js';

export interface OrphanReaper {
  /** Orphans reaped so far. */
  readonly reaped: number;
  stop(): void;
}

/** The zombies whose parent is `parent`, from /proc (pid and ppid of each). */
export function zombieChildren(parent: number, proc = '/proc'): number[] {
  const found: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync(proc);
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`${proc}/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state === 'Z' && Number(ppid) === parent) found.push(Number(entry));
  }
  return found;
}

/**
 * Reaps reparented zombies while this process is PID 1 (null otherwise, or without the native
 * helper: run.ts says that once, native-missing.ts). `own` lists the processes the master spawned itself.
 */
export function reapOrphans({ own, pid = process.pid }: { own: () => Iterable<number>; pid?: number }): OrphanReaper | null {
  if (pid !== 1) return null;
  const helper = nativeHelper();
  if (!helper) return null;
  let reaped = 0;
  let scheduled = false;
  const sweep = (): void => {
    scheduled = false;
    const mine = new Set(own());
    for (const zombie of zombieChildren(pid)) {
      if (mine.has(zombie)) continue;
      if (helper.reap(zombie)) reaped++;
    }
  };
  // A burst of exits is one sweep, after the handler has returned (libuv reaps its own children first).
  const onChild = (): void => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(sweep);
  };
  process.on('SIGCHLD', onChild);
  sweep();
  return {
    get reaped() {
      return reaped;
    },
    stop() {
      process.off('SIGCHLD', onChild);
    },
  };
}
