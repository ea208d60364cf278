// A worker's inspector, opened on demand by the master: the way to its main thread that needs nothing
// of the main thread (stacks of a blocked loop, CPU profiles), and costs nothing until it is used.
//
// Workers are forked with `--inspect-port=0 --inspect-publish-uid=stderr` (see inspectorArgs): no
// inspector runs, but SIGUSR1 starts one, on a port of 127.0.0.1 the system picks, from a signal
// thread of Node's, so within milliseconds even while the loop spins. Node prints its address, with a
// random id, on the worker's stderr, which only the master reads (publish-uid=stderr: the id is not
// served over HTTP, so another local user who finds the port still cannot connect). The master takes
// that line and the inspector's other notices out of the worker's log (intercept), connects over a
// WebSocket (the `ws` package: Node 20 has no WebSocket client of its own) for each capture or profile.
// The inspector stays up once started, so later captures skip the start.
//
// Node's inspector leaves Nagle's algorithm on, and every protocol step is a few small writes: each one
// after the first waited for the master's delayed ACK, about 40 ms per step and 150 ms per capture, too
// late to catch a 150 ms block. So once it is up, the master sets TCP_NODELAY on the inspector's
// listening socket through the native helper (pidfd_getfd, the parent's right to ptrace its child), which
// the sockets it accepts inherit on Linux: a capture then takes 2-7 ms. Where that is not possible (no
// helper, another system, a seccomp profile that forbids pidfd_getfd) captures work, only slower.
//
// An app that listens for SIGUSR1 itself takes the signal: Node then runs the app's handler and opens
// nothing. Its runtime says so when the app adds the listener (src/worker/inspector.ts), and from then
// on the master never signals it: it asks the worker over IPC to open the inspector from JavaScript,
// at once, while its loop turns, and takes the address from stderr as before. An app with an inspector
// of its own (--inspect, or inspector.open() in its code) prints its address unasked, and SIGUSR1 finds
// it up and prints nothing: the master connects to that address instead, when it is on 127.0.0.1 (else
// captures fail with one line saying so).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { z } from 'zod';
import { StackCapturer, type Capture } from '../loop/capture.js';
import { mapProfile } from '../loop/profile-map.js';
import type { CpuProfile, StackFrame } from '../loop/types.js';
import { ClusterdError, clip } from '../errors.js';
import { WORKER_INSPECTOR_ARGS } from '../protocol.js';
import { nativeHelper } from '../system/native.js';
import { nodeOptionsFlags } from '../system/node-options.js';
import { processState } from '../system/process-state.js';
import { InspectorClient } from './inspector-client.js';

/** Why nothing in a stopped process answers: neither its inspector's thread nor its main thread runs. */
export const STOPPED = 'the process is stopped (SIGSTOP, or a debugger holds it): nothing in it runs';

/** Whether a process is stopped (job control or a tracer: state T or t in /proc/PID/stat); false when it cannot be read. */
export function isStopped(pid: number): boolean {
  const state = processState(pid);
  return state === 'T' || state === 't';
}

/**
 * The flags that let the master open a worker's inspector later, less what the user's own flags say of
 * it (`--node-arg`, and NODE_OPTIONS, which the workers inherit: given before them, so that it needs
 * the same care). A bare `--inspect` (`-brk`, `-wait`) opens it at start, on 127.0.0.1:9229 in every
 * worker, where all but the first failed ("address already in use"): with `--inspect-port=0` each
 * worker's is on a port of its own, printed in its log. A port the user gives (`--inspect=9241`,
 * `--inspect-port`) is theirs and holds: these flags come after NODE_OPTIONS and would replace it.
 * The master finds the inspector's address only on the worker's stderr, so a user's
 * `--inspect-publish-uid` gets `stderr` added to it rather than replaced (`http` kept for
 * chrome://inspect). Put after the user's `--node-arg` flags, which it accounts for.
 */
export function inspectorArgs(userArgs: readonly string[], nodeOptions = ''): string[] {
  const flags = [...nodeOptionsFlags(nodeOptions), ...userArgs];
  if (flags.some((arg) => /^--debug/.test(arg))) return [];
  const args: string[] = [];
  const ownPort = flags.some((arg) => /^--inspect(-brk|-wait)?=/.test(arg) || /^--inspect-port(=|$)/.test(arg));
  if (!ownPort) args.push(WORKER_INSPECTOR_ARGS[0]!);
  // Node takes the last one given; `--inspect-publish-uid stderr`, in two words, is not looked into.
  const published = flags.filter((arg) => arg.startsWith('--inspect-publish-uid=')).at(-1)?.slice('--inspect-publish-uid='.length);
  if (published === undefined) {
    // Node publishes over HTTP too by default: kept for an inspector on the user's port, the app's own.
    if (!ownPort && !flags.includes('--inspect-publish-uid')) args.push(WORKER_INSPECTOR_ARGS[1]!);
  } else if (!published.split(',').includes('stderr')) {
    args.push(`--inspect-publish-uid=${published === '' ? 'stderr' : `${published},stderr`}`);
  }
  return args;
}

/** Node's line when the inspector cannot listen: `Starting inspector on 127.0.0.1:9229 failed: address already in use`. */
const START_FAILED = /^Starting inspector on (\S+) failed: (.+)$/;

/** How long SIGUSR1 may take to bring up the inspector (it runs on a thread of its own). */
const OPEN_TIMEOUT_MS = 2000;
/** How long one capture may wait for the main thread to reach JavaScript (a long native call). */
export const CAPTURE_TIMEOUT_MS = 1000;

/** Node's line, with the only address it prints for an inspector on port 0 of the loopback interface. */
const LISTENING = /^Debugger listening on (ws:\/\/127\.0\.0\.1:\d{1,5}\/[0-9a-f-]{36})$/;
/** Node prints this when the process is exiting with a session attached, and waits for it to end. */
const EXITING = /^Waiting for the debugger to disconnect\.\.\.$/;
const NOTICES = [/^For help, see: https:\/\/nodejs\.org\/\S+$/, /^Debugger attached\.$/, /^Debugger ending on ws:\/\/\S+$/, EXITING];

// A profile comes from inside the worker, as any message from it: parsed before it is passed on.
const callFrame = z.object({ functionName: z.string(), scriptId: z.string(), url: z.string(), lineNumber: z.number().int(), columnNumber: z.number().int() });
const profileNode = z.object({
  id: z.number().int(),
  callFrame,
  hitCount: z.number().int().nonnegative().optional(),
  children: z.array(z.number().int()).optional(),
  positionTicks: z.array(z.object({ line: z.number().int(), ticks: z.number().int() })).optional(),
});
const stopped = z.object({
  profile: z.object({ nodes: z.array(profileNode), startTime: z.number(), endTime: z.number(), samples: z.array(z.number().int()).optional(), timeDeltas: z.array(z.number()).optional() }),
});

export class WorkerInspector {
  readonly #pid: number;
  #url: string | null = null;
  /** An address the worker printed unasked: the app opened an inspector of its own (inspector.open(), --inspect). */
  #appUrl: string | null = null;
  #waitingForUrl: ((url: string) => void) | null = null;
  /** SIGUSR1 was sent, or the worker was asked over IPC to open it: the inspector's address may come on stderr. */
  #openRequested = false;
  /** The app listens for SIGUSR1: ask the worker to open its inspector (false: its channel is closed). */
  #askToOpen: (() => boolean) | null = null;
  /** The activation under way, shared by whoever needs the address meanwhile. */
  #opening: Promise<string> | null = null;
  /** The capture under way, shared by whoever asks meanwhile. */
  #capturing: Promise<Capture | null> | null = null;
  /** The profile under way; `aborted`: its asker went away, and it is only being stopped. */
  #profiling: { aborted: boolean; done: Promise<unknown> } | null = null;
  #closed = false;
  /** The sessions open now: an exiting worker waits for them, so they are closed at once. */
  readonly #clients = new Set<InspectorClient>();
  /** The user's own node flags set up the inspector (--inspect...): clusterd's flags were left out. */
  readonly #ownFlags: boolean;
  /** Why Node could not start the inspector, as it said on stderr (a port another worker holds). */
  #startFailed: string | null = null;

  constructor(pid: number, { ownFlags = false }: { ownFlags?: boolean } = {}) {
    this.#pid = pid;
    this.#ownFlags = ownFlags;
  }

  /**
   * For the worker's stderr: true for a line of the inspector's own (its address, its notices), which
   * the master keeps out of the worker's log.
   */
  intercept(line: string): boolean {
    const listening = LISTENING.exec(line);
    // Only once the master has asked for it (SIGUSR1, or over IPC) and has no address yet: an app can print such a line too.
    // Also after that activation gave up waiting: on a starved machine the line can come late, and
    // Node prints it only once (another SIGUSR1 finds the inspector up and says nothing), so a line
    // dropped then would leave the worker without an inspector for good.
    if (listening && (this.#waitingForUrl !== null || (this.#openRequested && this.#url === null))) {
      this.#url = listening[1]!;
      noDelay(this.#pid, Number(new URL(this.#url).port));
      this.#waitingForUrl?.(this.#url);
      this.#waitingForUrl = null;
      return true;
    }
    // Unasked: the app's own inspector, which SIGUSR1 would find up and say nothing of. The line is
    // the app's to log; the address is tried before asking for one.
    if (listening) this.#appUrl = listening[1]!;
    // The app's own flags put every worker's inspector on one port: said when a stack cannot be had.
    const failed = START_FAILED.exec(line);
    if (failed) this.#startFailed = `Node could not start its inspector on ${failed[1]}: ${clip(failed[2]!, 200)}`;
    if (this.#url === null || !NOTICES.some((notice) => notice.test(line))) return false;
    // The worker is exiting (process.exit(), or its loop emptied) and Node holds the exit until our
    // sessions end: end them now, so that it exits, and what they were doing fails as `exited`.
    if (EXITING.test(line)) this.#exiting();
    return true;
  }

  #exiting(): void {
    this.#closed = true;
    for (const client of this.#clients) client.close(new ClusterdError('ERR_CLUSTERD_WORKER_EXITED', `pid ${this.#pid} exited`));
    this.#clients.clear();
  }

  /** The worker's main-thread frames (empty: idle), or null when it stayed in native code past the capture timeout. */
  async capture(): Promise<StackFrame[] | null> {
    return (await this.captureAt())?.frames ?? null;
  }

  /** capture(), with when the main thread ran the probe (to tell whether it was inside a silence). */
  captureAt(): Promise<Capture | null> {
    this.#capturing ??= this.#session((client) => new StackCapturer(client, { timeoutMs: CAPTURE_TIMEOUT_MS }).capture()).finally(() => {
      this.#capturing = null;
    });
    return this.#capturing;
  }

  /** Whether a profile is being taken now (for an asker still there). */
  get profiling(): boolean {
    return this.#profiling !== null && !this.#profiling.aborted;
  }

  /**
   * Samples the main thread for `durationMs` (every `intervalUs`), or until `signal` aborts (the asker
   * went away: the profiler stops then, rather than sample the worker for the rest of a window of up to
   * 5 minutes and refuse every other profile meanwhile); rejects with ERR_CLUSTERD_BUSY when a profile
   * runs already.
   */
  async profile(durationMs: number, intervalUs = 1000, signal?: AbortSignal): Promise<CpuProfile> {
    // One whose asker went away is being stopped (the profiler's stop, a moment): the next waits for
    // it rather than be refused as busy when a page or a `clusterd profile` is retried at once.
    while (this.#profiling?.aborted) await this.#profiling.done.catch(() => {});
    if (this.#profiling) throw new ClusterdError('ERR_CLUSTERD_BUSY', `a profile of pid ${this.#pid} is already being taken`);
    const running = { aborted: false, done: Promise.resolve<unknown>(undefined) };
    this.#profiling = running;
    const onAbort = (): void => {
      running.aborted = true;
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    const profile = this.#session(async (client) => {
      await client.post('Profiler.enable');
      await client.post('Profiler.setSamplingInterval', { interval: intervalUs });
      await client.post('Profiler.start');
      // The window, unless the session ends first (the worker exits).
      let timer: NodeJS.Timeout | undefined;
      const ended = client.ended.then((reason) => Promise.reject(reason));
      ended.catch(() => {});
      const window = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, durationMs);
        if (signal?.aborted) resolve();
        signal?.addEventListener('abort', () => resolve(), { once: true });
      });
      await Promise.race([window, ended]).finally(() => clearTimeout(timer));
      const result = stopped.safeParse(await client.post('Profiler.stop'));
      if (!result.success) throw unavailable(this.#pid, 'its inspector sent something that is not a CPU profile');
      const taken: CpuProfile = result.data.profile;
      await mapProfile(client, taken);
      return taken;
    }).finally(() => {
      signal?.removeEventListener('abort', onAbort);
      if (this.#profiling === running) this.#profiling = null;
    });
    running.done = profile;
    return profile;
  }

  /**
   * The worker's app listens for SIGUSR1 (its runtime said so): from now on the inspector is opened by
   * asking the worker with `open` instead of a signal, and it is opened now, while the loop turns, so
   * that a loop that blocks later can still be read. Returns the address once open (null when told
   * already or closed).
   */
  appTakesSigusr1(open: () => boolean): Promise<string> | null {
    if (this.#askToOpen !== null || this.#closed) return null;
    this.#askToOpen = open;
    return this.#url === null ? this.#activate() : Promise.resolve(this.#url);
  }

  /** No new sessions: the worker is stopping or gone. */
  close(): void {
    this.#closed = true;
    this.#waitingForUrl = null;
  }

  /**
   * Runs `use` over a session of its own, connected for it and closed after: a session left attached
   * would keep a worker whose loop empties from exiting (Node waits for its debugger to disconnect).
   * The inspector itself stays up, so the next session is only a WebSocket away.
   */
  async #session<T>(use: (client: InspectorClient) => Promise<T>): Promise<T> {
    if (this.#closed) throw unavailable(this.#pid, 'the worker is stopping');
    const client = await this.#connect();
    this.#clients.add(client);
    try {
      return await use(client);
    } catch (error) {
      // The worker closed the connection (it is exiting, or its inspector stopped): said as the
      // inspector's failure, which the caller may explain by the worker's exit.
      if (error instanceof ClusterdError || client.open) throw error;
      throw unavailable(this.#pid, (error as Error).message);
    } finally {
      this.#clients.delete(client);
      client.close();
    }
  }

  async #connect(): Promise<InspectorClient> {
    const own = this.#url === null ? this.#appUrl : null;
    if (own !== null) {
      try {
        const client = await InspectorClient.connect(own, OPEN_TIMEOUT_MS);
        this.#url = own;
        noDelay(this.#pid, Number(new URL(own).port));
        return client;
      } catch {
        // Closed since (inspector.close()), or not an inspector: open one as for any worker.
        this.#appUrl = null;
      }
    }
    const cached = this.#url;
    try {
      return await InspectorClient.connect(cached ?? (await this.#activate()), OPEN_TIMEOUT_MS);
    } catch (error) {
      this.#url = null;
      if (cached === null || error instanceof ClusterdError) throw failedToConnect(this.#pid, error);
    }
    // The address of an inspector that has since closed (the app called inspector.close()): opened
    // again, once (this capture failed, and only the next one found it open).
    try {
      return await InspectorClient.connect(await this.#activate(), OPEN_TIMEOUT_MS);
    } catch (error) {
      this.#url = null;
      throw failedToConnect(this.#pid, error);
    }
  }

  /**
   * Why no inspector came up, as far as the master can tell. Node starts it on SIGUSR1 from the main
   * thread (a V8 interrupt, or the loop's next turn), so a main thread inside a native call (execSync
   * and spawnSync run a loop of their own; a synchronous addon) never starts it, whatever the app does.
   * The app's own SIGUSR1 listener is known (its runtime says so, and the worker is asked over IPC
   * instead), and so are the user's own inspector flags: what is left is that native call.
   */
  #whyNoneCameUp(asked: boolean): string {
    const within = `within ${OPEN_TIMEOUT_MS} ms`;
    if (asked) return `no inspector came up ${within} of asking the worker to open it (the app listens for SIGUSR1, so the worker's JavaScript must open it: is its loop blocked?)`;
    if (this.#ownFlags && this.#startFailed) return `no inspector came up ${within} of SIGUSR1: ${this.#startFailed} (the workers' own --inspect flags give them one port: leave the port out, \`--node-arg=--inspect\`, for one each)`;
    if (this.#ownFlags) return `no inspector came up ${within} of SIGUSR1 (the workers run with their own --inspect flags; clusterd takes only an inspector on 127.0.0.1 whose address Node prints)`;
    return `no inspector came up ${within} of SIGUSR1, as no JavaScript ran to start it (its main thread is likely blocked inside a native call: execSync, spawnSync, a synchronous addon)`;
  }

  /**
   * SIGUSR1 (or, for an app that took that signal, the worker's runtime asked over IPC): Node starts
   * the inspector and prints where, which intercept() takes from stderr.
   */
  #activate(): Promise<string> {
    this.#opening ??= new Promise<string>((resolve, reject) => {
      const ask = this.#askToOpen;
      const timer = setTimeout(() => {
        this.#waitingForUrl = null;
        reject(unavailable(this.#pid, isStopped(this.#pid) ? STOPPED : this.#whyNoneCameUp(ask !== null)));
      }, OPEN_TIMEOUT_MS);
      this.#waitingForUrl = (found) => {
        clearTimeout(timer);
        resolve(found);
      };
      try {
        if (ask) {
          if (!ask()) throw new Error('its IPC channel is closed');
        } else {
          process.kill(this.#pid, 'SIGUSR1');
        }
        this.#openRequested = true;
      } catch (error) {
        clearTimeout(timer);
        this.#waitingForUrl = null;
        reject(unavailable(this.#pid, (error as Error).message));
      }
    }).finally(() => {
      this.#opening = null;
    });
    return this.#opening;
  }
}

/** A failure to reach a worker's inspector, as one line (an activation's own error as it is). */
function failedToConnect(pid: number, error: unknown): Error {
  return error instanceof ClusterdError ? error : unavailable(pid, `cannot connect to its inspector: ${(error as Error).message}`);
}

/** TCP_NODELAY on the inspector's listening socket in process `pid`, found by its port; false where that cannot be done. */
export function noDelay(pid: number, port: number): boolean {
  const helper = nativeHelper();
  if (helper === null || process.platform !== 'linux') return false;
  try {
    // Listening sockets on the port (state 0A), by inode; then the process's fd that is one of them.
    const inodes = new Set<string>();
    for (const line of readFileSync(`/proc/${pid}/net/tcp`, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[3] === '0A' && Number.parseInt(fields[1]?.split(':')[1] ?? '', 16) === port && fields[9]) inodes.add(fields[9]);
    }
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (inodes.has(/^socket:\[(\d+)\]$/.exec(link)?.[1] ?? '')) return helper.setRemoteNoDelay(pid, Number(fd)) === 0;
    }
  } catch {
    // The worker is gone, or /proc is not readable: the inspector works, with Nagle's delays.
  }
  return false;
}

function unavailable(pid: number, why: string): ClusterdError {
  return new ClusterdError('ERR_CLUSTERD_INSPECTOR', `the inspector of pid ${pid} is not available: ${why}`);
}
