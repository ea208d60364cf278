// Process groups: every worker leads one (src/master/worker-fork.ts says how), so that the app's children
// end with it: when the master sees the worker gone, and when the worker sees the master gone.
import { readFileSync } from 'node:fs';

/** SIGKILL to what is left of a worker's process group (the app's children), once the worker is gone. */
export function endGroup(pid: number): void {
  if (pid <= 0) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: nothing is left of it.
  }
}

/**
 * From inside a worker: SIGKILL to its whole group, itself included, when it leads one; otherwise
 * (a platform without /proc, a group it did not get) to itself alone. Does not return when it kills.
 */
export function endOwnGroup(): void {
  if (leadsOwnGroup()) endGroup(process.pid);
}

function leadsOwnGroup(): boolean {
  try {
    // /proc/self/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces and parentheses.
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[2]) === process.pid;
  } catch {
    return false;
  }
}
