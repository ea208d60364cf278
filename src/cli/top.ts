import type { WriteStream } from 'node:tty';
import type { CommandModule } from 'yargs';
import { fail } from './fail.js';
import { connectFromArgs, withControlOptions, type ControlArgs } from './control-args.js';
import { outputWidth } from './format.js';
import { Screen } from './screen.js';
import { topLines } from './views.js';
import { blockedNote, loopLines } from './profile-view.js';
import { ClusterdError } from '../errors.js';
import { NOT_RUNNING } from '../control/client.js';
import { MAX_WATCH_INTERVAL_MS, MIN_WATCH_INTERVAL_MS } from '../control/options.js';
import type { ClusterView } from '../control/types.js';
import { parseDuration } from '../options.js';

interface TopArgs extends ControlArgs {
  name?: string;
  once: boolean;
  interval: string;
}

export const topCommand: CommandModule<object, TopArgs> = {
  command: 'top [name]',
  describe: 'The status table, live, with each worker\'s recent loop lag as a sparkline',
  builder: (yargs) =>
    withControlOptions(
      yargs
        .positional('name', { type: 'string', describe: 'The cluster (may be left out when only one runs)' })
        .option('interval', { type: 'string', default: '1s', describe: 'Least time between two refreshes, 50ms to 1m' })
        .option('once', { type: 'boolean', default: false, describe: 'Print one snapshot, plain, and exit' })
        .epilog(
          'On a terminal: a full-screen view, quit with q or Ctrl-C; loop lag is yellow from 50 ms and red from 100 ms, ' +
            'ELU yellow from 70% and red from 90%. Otherwise (a pipe, a file): one plain snapshot per refresh.',
        ),
    ),
  handler: async (args) => {
    try {
      await runTop(args);
    } catch (error) {
      fail(error);
    }
  },
};

async function runTop(args: TopArgs): Promise<void> {
  const minIntervalMs = parseDuration('interval', args.interval, { min: MIN_WATCH_INTERVAL_MS, max: MAX_WATCH_INTERVAL_MS });
  const { client, status } = await connectFromArgs(args);
  const out = process.stdout;
  if (args.once) {
    try {
      const full = await client.status({ history: true });
      out.write(`${plainLines(full).join('\n')}\n`);
    } finally {
      client.close();
    }
    return;
  }

  const live = out.isTTY === true;
  await new Promise<void>((resolve, reject) => {
    let latest: ClusterView = status;
    let finished = false;
    let watch: { cancel(): void } | null = null;
    // The selected worker, and what p last showed for it.
    let selected = latest.workers[0]?.id;
    let below: string[] = [];
    const onKey = (key: string): void => {
      const ids = latest.workers.map((worker) => worker.id);
      const at = Math.max(0, ids.indexOf(selected ?? -1));
      if (key === '\x1b[A' || key === 'k') selected = ids[Math.max(0, at - 1)];
      else if (key === '\x1b[B' || key === 'j') selected = ids[Math.min(ids.length - 1, at + 1)];
      else if ((key === 'p' || key === 'P') && selected !== undefined) void showPhases(selected);
      else return;
      draw();
    };
    const showPhases = async (id: number): Promise<void> => {
      below = [`worker ${id}: measuring its loop for 1 s...`];
      draw();
      try {
        const view = await client.loop(id, { durationMs: 1000 });
        below = 'blocked' in view ? blockedNote(id, view.blocked, { runtimePrefixes: latest.runtimePrefixes }) : loopLines(id, view).slice(0, 12);
      } catch (error) {
        below = [`worker ${id}: ${(error as Error).message.split('\n')[0]}`];
      }
      draw();
    };
    const screen = live
      ? new Screen(out as WriteStream, process.stdin, { onQuit: () => finish(null), onResize: () => draw(), onKey })
      : null;
    const colour = live && !process.env.NO_COLOR;
    const draw = (): void => {
      if (finished) return;
      if (screen) {
        screen.draw(topLines(latest, { width: screen.width, height: screen.height, colour, now: Date.now(), selected, below }));
      } else {
        out.write(`${plainLines(latest).join('\n')}\n\n`);
      }
    };
    const onSignal = (): void => finish(null);
    const onOutputError = (error: NodeJS.ErrnoException): void => finish(error.code === 'EPIPE' ? null : error);
    const finish = (error: Error | null, note?: string): void => {
      if (finished) return;
      finished = true;
      watch?.cancel();
      client.close();
      screen?.restore();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      out.off('error', onOutputError);
      if (note) process.stderr.write(`clusterd: ${note}\n`);
      if (error) reject(error);
      else resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    out.on('error', onOutputError);
    screen?.enter();
    watch = client.watch(
      { history: true, minIntervalMs },
      {
        onStatus: (next) => {
          latest = next;
          draw();
        },
        onEnd: (error: ClusterdError | null) => {
          if (error?.code === NOT_RUNNING) {
            finish(new ClusterdError(NOT_RUNNING, `lost the connection to cluster ${latest.name} at ${client.address}`, { cause: error }));
          } else {
            finish(error, error ? undefined : `cluster ${latest.name} stopped`);
          }
        },
      },
    );
  });
}

function plainLines(status: ClusterView): string[] {
  return topLines(status, { width: outputWidth(), height: Infinity, colour: false, now: Date.now() });
}
