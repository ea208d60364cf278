// The open-loop child runs ahead of the system under test in the CPU queue, as a client on a machine
// of its own would. On 2 shared cores, at 70-90% of capacity, the workers and the master keep both
// cores busy; a generator at the same priority then waits its turn for tens of ms, sends late, and
// reads responses late, and its lateness lands in every latency it reports. Its work is fixed by the
// rate, so running it first takes no more CPU from the system than it needs anyway, only sooner.
//
// Under autogroup scheduling (kernel.sched_autogroup_enabled, on by default) CPU is first shared
// between sessions, so a nice value alone means nothing against processes of another session: the
// child (spawned detached, so a session of its own) sets its session's autogroup nice as well. Both
// need CAP_SYS_NICE (root); without it the child runs at normal priority and says so.
import fs from 'node:fs';
import os from 'node:os';

export const GENERATOR_NICE = -10;

/** Raises this process's priority; returns what it got, for the results. */
export function raisePriority(nice = GENERATOR_NICE): string {
  try {
    os.setPriority(0, nice);
  } catch (error) {
    return `normal priority (raising it failed: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
  }
  // Only a session leader has the autogroup to itself: never raise the runner's session with it.
  if (!leadsSession()) return `nice ${nice} (not a session leader: autogroup left alone)`;
  try {
    fs.writeFileSync('/proc/self/autogroup', String(nice));
    return `nice ${nice}, and its autogroup too`;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // No autogroup file: a kernel without autogroup scheduling, where the nice value alone decides.
    return code === 'ENOENT' ? `nice ${nice}` : `nice ${nice} (its autogroup could not be raised: ${code ?? (error as Error).message})`;
  }
}

function leadsSession(): boolean {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    // Fields after the command name: state ppid pgrp session ...
    const session = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
    return session === process.pid;
  } catch {
    return false;
  }
}
