import type { CommandModule } from 'yargs';
import { failOperation } from './operation.js';
import { MAX_INSTANCES } from '../options.js';
import { connectFromArgs, nameAndTarget, parseScaleSpec, withControlOptions, type ControlArgs } from './control-args.js';
import type { ControlClient } from '../control/client.js';
import type { ClusterView } from '../control/types.js';
import { onePerId, shownState } from '../control/worker-rows.js';

/** How long scale answers before it says what it waits for. */
const WAITING_NOTICE_MS = 1000;

interface ScaleArgs extends ControlArgs {
  name?: string | number;
  'count'?: string | number;
  json: boolean;
}

export const scaleCommand: CommandModule<object, ScaleArgs> = {
  // `scale -1` reads as a count because yargs-parser takes a bare negative number for a value;
  // `scale -- -1` works too (main.ts puts the words after `--` in the positionals). Two optional
  // positionals, as for restart.
  command: 'scale [name] [count]',
  describe: `Set the number of workers: N, +K or -K (1 to ${MAX_INSTANCES} workers); scaling down drains the workers with the highest ids`,
  builder: (yargs) =>
    withControlOptions(
      yargs
        .usage('$0 scale [NAME] <N|+K|-K>')
        .positional('name', { type: 'string', describe: 'NAME (may be left out when only one cluster runs), or the count' })
        .positional('count', { type: 'string', describe: 'The count, when NAME is given' })
        .option('json', { type: 'boolean', default: false, describe: 'Print {"name":..., "workers":N, "ready":R, "killed":[...]} (R null when the status after it failed; killed: the workers taken away killed at --grace, each {id, pid, message})' })
        .example('$0 scale 4', 'four workers')
        .example('$0 scale api -1', 'one worker fewer in cluster api (never fewer than one)'),
    ),
  handler: async (args) => {
    try {
      const { name, target } = nameAndTarget([args.name, args['count']], {
        label: 'the worker count N|+K|-K',
        form: /^[+-]?\d+$/,
        usage: 'clusterd scale [NAME] <N|+K|-K>',
      });
      const spec = parseScaleSpec(target);
      const { client, status } = await connectFromArgs({ ...args, name });
      try {
        const stopNotice = noticeWhileWaiting(client);
        const { workers, killed } = await client.scale(spec).finally(stopNotice);
        // A worker taken away that was killed at --grace, as reload and restart say theirs: the scale
        // is done all the same (exit 0), its line on stderr and in `killed`.
        for (const worker of killed) process.stderr.write(`clusterd: ${worker.message}\n`);
        // The scale is done: a status that fails after it (the master stopping) leaves the count alone to print, not a failure.
        const after = await client.status().catch(() => null);
        const { ready, others } = after ? readiness(after, workers) : { ready: null, others: [] };
        const text = args.json ? JSON.stringify({ name: status.name, workers, ready, killed }) : `${status.name}: ${scaledTo(workers, ready, others)}`;
        process.stdout.write(`${text}\n`);
      } finally {
        client.close();
      }
    } catch (error) {
      // A new worker that failed to boot: its last output under the line, as for reload.
      failOperation(error);
    }
  },
};

/**
 * Scale answers once the new workers are ready and those taken away have exited, which a worker that
 * holds a request open and ignores the stop signal makes last up to --grace: after a second of
 * silence this says, on stderr, which workers it waits for (from the status; stdout stays the answer
 * alone, JSON with --json). Returns the function that cancels it once the answer has come.
 */
function noticeWhileWaiting(client: ControlClient): () => void {
  let answered = false;
  const timer = setTimeout(() => {
    client
      .status()
      .then((status) => waitingFor(status.workers), () => null)
      .then((what) => {
        if (!answered && what !== null) process.stderr.write(`clusterd: waiting ${what}\n`);
      }, () => {});
  }, WAITING_NOTICE_MS);
  timer.unref();
  return () => {
    answered = true;
    clearTimeout(timer);
  };
}

/**
 * `for worker 2, 3 to drain (...)`, or null when none drains: a scale up waits for its workers to boot,
 * as a reload does, within --listen-timeout, and says nothing before its answer (its failure's line
 * comes first, alone).
 */
function waitingFor(workers: readonly { id: number; state: string }[]): string | null {
  const stopping = workers.filter((worker) => worker.state === 'stopping').map((worker) => worker.id).join(', ');
  return stopping === '' ? null : `for worker ${stopping} to drain (killed once --grace is over)`;
}

/**
 * Worker ids 1 to `count` after the scale, read from the status: how many are ready (their loop not
 * blocked, as status counts them), and what each of the others is. A scale answers once its workers
 * have booted, which a worker that closed its servers has, and a scale down does not wait for the
 * ids it keeps: one may be crash-looping, another not listening (it said "all ready" all the same).
 */
export function readiness(status: Pick<ClusterView, 'workers' | 'waiting'>, count: number): { ready: number; others: string[] } {
  let ready = 0;
  const others: string[] = [];
  for (let id = 1; id <= count; id++) {
    const what = idState(status, id);
    if (what === 'ready') ready++;
    else others.push(`worker ${id} ${what}`);
  }
  return { ready, others };
}

/** What worker `id` is now: its serving process's state (`blocked` for a ready one whose loop is), or why it has none. */
function idState({ workers, waiting }: Pick<ClusterView, 'workers' | 'waiting'>, id: number): string {
  // While an id has two processes, the one serving speaks for it (a newer one still starting does not), as for status and /metrics.
  const [serving] = onePerId(workers.filter((worker) => worker.id === id));
  if (serving) return shownState(serving).replace('-', ' ');
  return waiting.some((each) => each.id === id) ? 'waiting to be restarted' : 'with no process';
}

/** `2 workers, all ready`, or `2 workers, 0 ready (worker 1 not listening, worker 2 waiting to be restarted)`; `2 workers` when not known. */
function scaledTo(count: number, ready: number | null, others: readonly string[]): string {
  const workers = `${count} worker${count === 1 ? '' : 's'}`;
  if (ready === null) return workers;
  return others.length === 0 ? `${workers}, all ready` : `${workers}, ${ready} ready (${others.join(', ')})`;
}
