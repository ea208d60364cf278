// The directory workers run in, by the path the user knows it by. process.cwd() is the real path:
// started in /srv/app/current (a deploy's symlink to releases/v1), it says /srv/app/releases/v1,
// and workers forked there after the deploy has moved the symlink on (a reload) would run the new
// code in the old release's directory, reading its files. The shell's $PWD keeps the symlink; it
// is used when it names the same directory (a stale or foreign one does not), and workers are
// forked with that path, which the kernel resolves anew at every fork.
import { statSync } from 'node:fs';
import { isAbsolute, normalize } from 'node:path';

/** $PWD when it is absolute and is this process's current directory; else process.cwd(). */
export function logicalCwd(env: NodeJS.ProcessEnv = process.env): string {
  const real = process.cwd();
  const pwd = env.PWD;
  if (!pwd || !isAbsolute(pwd)) return real;
  try {
    const here = statSync(real);
    const there = statSync(pwd);
    return here.dev === there.dev && here.ino === there.ino ? normalize(pwd) : real;
  } catch {
    return real;
  }
}
