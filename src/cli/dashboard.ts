// `clusterd dashboard [NAME]`: the --dashboard page for a cluster that runs without one. This
// process follows the master's dashboard feed over the control plane (the Dashboard rpc), keeps
// its own copy of the window (DashboardMirror), and serves the same page, API and events; the
// actions go to the master as control calls. It serves until SIGINT/SIGTERM (exit 0) or until the
// cluster stops (one line on stderr, exit 7).
import type { CommandModule } from 'yargs';
import { fail } from './fail.js';
import { connectFromArgs, withControlOptions, type ControlArgs } from './control-args.js';
import { isCpuProfile } from './profile-view.js';
import { blockedCapture, loopReport, type DashboardActions } from '../dashboard/actions.js';
import { DashboardMirror } from '../dashboard/mirror.js';
import { parseFeedMessage } from '../dashboard/schema.js';
import { exposureWarning, startDashboard } from '../dashboard/server.js';
import { DEFAULT_CALL_TIMEOUT_MS, NOT_RUNNING, type ControlClient, type Subscription } from '../control/client.js';
import { dashboardToken, DASHBOARD_TOKEN_ENV, parseListenAddress } from '../control/options.js';
import { ClusterdError, oneLine } from '../errors.js';
import { ExitCode } from '../exit-codes.js';

interface DashboardArgs extends ControlArgs {
  name?: string;
  listen: string;
  'dashboard-token'?: string;
  'dashboard-token-file'?: string;
}

export const dashboardCommand: CommandModule<object, DashboardArgs> = {
  command: 'dashboard [name]',
  describe: 'Serve the live dashboard of a running cluster (the last 15 minutes at once) from this process',
  builder: (yargs) =>
    withControlOptions(
      yargs
        .usage('$0 dashboard [NAME] [--listen HOST:PORT|PATH] [--dashboard-token TOKEN | --dashboard-token-file FILE]')
        .positional('name', { type: 'string', describe: 'The cluster (may be left out when only one runs)' })
        .option('listen', {
          type: 'string',
          default: '127.0.0.1:0',
          describe: 'Where to serve it: HOST:PORT (port 0: any free one), PORT alone (on 127.0.0.1), or a unix socket PATH (a value with a / or ending in .sock; mode 0600, actions need no token there)',
        })
        .option('dashboard-token', { type: 'string', describe: `Allow the actions (reload, restart, profile, loop breakdown) on TCP to requests with Authorization: Bearer TOKEN (or $${DASHBOARD_TOKEN_ENV})` })
        .option('dashboard-token-file', { type: 'string', describe: 'Read the --dashboard-token from this file (keeps it out of ps)' })
        .epilog('Prints the URL (http://HOST:PORT/, or unix:PATH) on one line, then serves until SIGINT or SIGTERM, or until the cluster stops (exit 0 both), or until its master is lost (exit 7).'),
    ),
  handler: async (args) => {
    try {
      await serve(args);
    } catch (error) {
      fail(error);
    }
  },
};

async function serve(args: DashboardArgs): Promise<void> {
  const listen = parseListenAddress(args.listen, 'listen');
  const token = dashboardToken(listen, { token: args['dashboard-token'], tokenFile: args['dashboard-token-file'] }, '--listen');
  const { client, status } = await connectFromArgs(args);
  const mirror = new DashboardMirror();
  let onEnd: (error: ClusterdError | null) => void = () => {};
  const ended = new Promise<ClusterdError | null>((resolve) => (onEnd = resolve));
  let subscription: Subscription | null = null;
  const stop = (error: ClusterdError | null): void => {
    subscription?.cancel();
    onEnd(error);
  };
  subscription = client.dashboard({
    onMessage: (json) => {
      try {
        mirror.accept(parseFeedMessage(json));
      } catch (error) {
        stop(error instanceof ClusterdError ? error : new ClusterdError('ERR_CLUSTERD_CONTROL', `cannot follow the dashboard feed: ${oneLine(error)}`));
      }
    },
    onEnd: stop,
  });
  // The master sends its snapshot at once; one that does not has something wrong with it.
  const deadline = setTimeout(() => stop(new ClusterdError('ERR_CLUSTERD_TIMEOUT', `the cluster ${status.name} sent no dashboard snapshot within ${DEFAULT_CALL_TIMEOUT_MS} ms`)), DEFAULT_CALL_TIMEOUT_MS);
  const first = await Promise.race([ended, waitReady(mirror)]);
  clearTimeout(deadline);
  if (first !== 'ready') {
    client.close();
    throw first ?? new ClusterdError('ERR_CLUSTERD_NOT_RUNNING', `the cluster ${status.name} stopped`);
  }
  const server = await startDashboard({ listen, name: status.name, source: mirror, actions: clientActions(client), token }).catch((error: unknown) => {
    stop(null);
    client.close();
    throw error;
  });
  process.stdout.write(`${server.url}\n`);
  const exposed = exposureWarning(server.address, token);
  if (exposed) process.stderr.write(`clusterd: warning: ${exposed}\n`);

  const shutdown = async (code: number, line: string | null): Promise<never> => {
    if (line !== null) process.stderr.write(`${line}\n`);
    subscription?.cancel();
    mirror.close();
    await server.close().catch(() => {});
    client.close();
    process.exit(code);
  };
  process.once('SIGINT', () => void shutdown(ExitCode.OK, null));
  process.once('SIGTERM', () => void shutdown(ExitCode.OK, null));
  const error = await ended;
  // As `top` and `logs -f`: a master that stops ends its streams before it closes its socket (exit
  // 0, done); one that drops the connection (SIGKILL, a crash, the network) is lost (exit 7).
  if (error === null) await shutdown(ExitCode.OK, `clusterd: the cluster ${status.name} stopped; its dashboard stops too`);
  else if (error.code === NOT_RUNNING) await shutdown(error.exitCode, `clusterd: lost the connection to cluster ${status.name} at ${client.address}; its dashboard stops too`);
  else await shutdown(error.exitCode, `clusterd: ${oneLine(error)}`);
}


function waitReady(mirror: DashboardMirror): Promise<'ready'> {
  return new Promise((resolve) => {
    const unsubscribe = mirror.subscribe(() => {
      unsubscribe();
      resolve('ready');
    });
  });
}

/** The dashboard's actions as control calls to the master (which logs them as the control socket's). */
export function clientActions(client: ControlClient): DashboardActions {
  return {
    reload: async () => {
      const { generation, replaced } = await client.reload({ parallel: 1 }, () => {});
      return { generation, replaced };
    },
    restart: async (id) => ({ pid: (await client.restart(id, () => {})).pid }),
    profile: async (id, durationMs, signal) => {
      const outcome = await client.profile(id, { durationMs, signal });
      if ('blocked' in outcome) return { blocked: blockedCapture({ blockedMs: outcome.blocked.blockedMs, stack: outcome.blocked.frames }) };
      // Passed on as a download: it must at least be the profile it claims to be.
      let profile: unknown;
      try {
        profile = JSON.parse(outcome.json.toString('utf8'));
      } catch {
        profile = null;
      }
      if (!isCpuProfile(profile)) throw new ClusterdError('ERR_CLUSTERD_CONTROL', 'the master sent something that is not a CPU profile');
      return { json: outcome.json };
    },
    loop: async (id, durationMs, signal) => {
      const view = await client.loop(id, { durationMs, signal });
      if ('blocked' in view) return { blocked: blockedCapture({ blockedMs: view.blocked.blockedMs, stack: view.blocked.frames }) };
      return { report: loopReport(id, view) };
    },
  };
}
