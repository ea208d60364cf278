// Whether a process is still running, by its pid. kill(pid, 0) alone says a process exists, and a
// zombie does: one that exited and that its parent has not reaped (waited for) yet. A master started
// by the API is the child of the caller's process, which reaps it only when its event loop turns:
// while that loop is busy, the master that exited stayed "running" for `clusterd stop`.
import { readFileSync } from 'node:fs';

/** The state letter of process `pid` (R, S, D, T, Z...) in /proc/PID/stat; null where it has none (gone, or no /proc). */
export function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ...": comm may hold spaces and parentheses, so the state follows the last ')'.
    return stat.charAt(stat.lastIndexOf(')') + 2) || null;
  } catch {
    return null;
  }
}

/** Whether process `pid` exists and has not exited (a zombie has; another user's process is running). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists, as another user's process.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return processState(pid) !== 'Z';
}
