// What ends the workers when the master itself is killed (SIGKILL leaves it no last word). A healthy
// worker sees its IPC channel close and ends its process group itself; one whose loop is blocked
// never runs that code. So the master keeps a small reaper process beside it, one per cluster: a
// shell that reads the workers' process groups from a pipe ("+pgid", "-pgid") and, when the pipe
// ends because the master is gone, SIGKILLs every group still listed: blocked workers and the app's
// children with them. It ignores the signals a terminal or a supervisor sends the master's group, and
// leads a session of its own, so a Ctrl-C does not take it first. A shell costs about a megabyte,
// once per cluster (a watchdog thread in every worker cost 10-20 MB each); where there is no
// /bin/sh (a distroless image), a second node process does the same, at node's size.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

const SH_SCRIPT = `trap '' INT TERM HUP QUIT
groups=''
while IFS= read -r line; do
  case $line in
    +*) groups="$groups \${line#+}" ;;
    -*) keep=''; for g in $groups; do [ "$g" = "\${line#-}" ] || keep="$keep $g"; done; groups=$keep ;;
  esac
done
for g in $groups; do kill -s KILL -- "-$g" 2>/dev/null; done`;

const NODE_SCRIPT = `for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT']) process.on(s, () => {});
const groups = new Set(); let rest = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  const lines = (rest + chunk).split('\\n'); rest = lines.pop();
  for (const line of lines) { if (line[0] === '+') groups.add(line.slice(1)); else if (line[0] === '-') groups.delete(line.slice(1)); }
});
process.stdin.on('end', () => { for (const g of groups) { try { process.kill(-Number(g), 'SIGKILL'); } catch {} } process.exit(0); });`;

export class Reaper {
  readonly #child: ChildProcess;

  constructor() {
    const [command, args] = existsSync('/bin/sh') ? ['/bin/sh', ['-c', SH_SCRIPT]] : [process.execPath, ['-e', NODE_SCRIPT]];
    this.#child = spawn(command, args, { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    this.#child.on('error', () => {});
    this.#child.stdin!.on('error', () => {});
    // Not what keeps the master alive; it ends when the master's end of the pipe closes.
    this.#child.unref();
    (this.#child.stdin as unknown as { unref?(): void }).unref?.();
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** A worker's process group to end should the master die. */
  add(pgid: number): void {
    this.#send(`+${pgid}\n`);
  }

  /** That group has been ended already (its worker is gone). */
  remove(pgid: number): void {
    this.#send(`-${pgid}\n`);
  }

  #send(line: string): void {
    const stdin = this.#child.stdin;
    if (stdin?.writable) stdin.write(line);
  }
}
