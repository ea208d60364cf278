// The master's own listeners: the control plane (its socket file always, TCP with --control),
// --metrics, --health and --dashboard. They start in turn before any worker is forked; one that
// cannot closes those already started, and the master fails with its error.
import type { MasterControl } from './control.js';
import { controlExposure, metricsExposure, tokenWeakness } from './exposure.js';
import type { OwnListener } from './listen-failure.js';
import type { LogSink } from './logs.js';
import type { Supervisor } from './supervisor.js';
import { formatAddress } from '../address.js';
import { startHealthServer, type Readiness } from '../control/health.js';
import type { Endpoint } from '../control/http-endpoint.js';
import { startMetricsServer } from '../control/metrics.js';
import { formatControlAddress, type ListenAddress, type TcpAddress } from '../control/options.js';
import { startControlServer, type ControlServer } from '../control/server.js';
import { masterActions } from '../dashboard/actions.js';
import type { DashboardFeed } from '../dashboard/feed.js';
import { exposureWarning, startDashboard, type DashboardServer } from '../dashboard/server.js';

export interface OwnServersOptions {
  name: string;
  supervisor: Supervisor;
  control: MasterControl;
  feed: DashboardFeed;
  logs: LogSink;
  controlTcp: (TcpAddress & { token: string }) | null;
  metrics: TcpAddress | null;
  health: TcpAddress | null;
  /** What /readyz answers, asked at each probe. */
  readiness: () => Readiness;
  dashboard: { listen: ListenAddress; token: string | null } | null;
}

export interface OwnServers {
  control: ControlServer;
  metrics: Endpoint | null;
  health: Endpoint | null;
  dashboard: DashboardServer | null;
  /** `http://host:port/metrics`, with the port the system chose for port 0. */
  metricsUrl: string | null;
  /** Where each is bound, for the line of a worker's listen that failed on one of them. */
  listeners: OwnListener[];
  close(): Promise<void>;
}

/** Starts them all, or none: rejects with the first one's error once those before it are closed. */
export async function startOwnServers(options: OwnServersOptions): Promise<OwnServers> {
  const { name, supervisor, feed, logs, controlTcp, metrics, health, dashboard } = options;
  const started: Array<{ close(): Promise<void> }> = [];
  const start = async <T extends { close(): Promise<void> }>(server: Promise<T>): Promise<T> => {
    try {
      const running = await server;
      started.push(running);
      return running;
    } catch (error) {
      await Promise.allSettled(started.map((earlier) => earlier.close()));
      throw error;
    }
  };
  const control = await start(
    startControlServer({
      name,
      source: supervisor,
      operations: options.control,
      dashboard: feed,
      tcp: controlTcp ?? undefined,
      onRefused: (source, { missing, wrong, throttled }, first) => {
        const why = [wrong > 0 ? `${wrong} with a wrong token` : '', missing > 0 ? `${missing} with none` : '', throttled > 0 ? `${throttled} unchecked after too many wrong tokens` : ''].filter(Boolean).join(', ');
        const text = first ? `control call from ${source} refused: ${wrong > 0 ? 'wrong token' : throttled > 0 ? 'too many wrong tokens' : 'no token'}` : `control calls from ${source} refused in the last minute: ${why}`;
        logs.event('control-refused', text, { source, missing, wrong, throttled }, 'warn');
      },
    }),
  );
  const metricsServer = metrics ? await start(startMetricsServer({ ...metrics, source: supervisor })) : null;
  const healthServer = health ? await start(startHealthServer({ ...health, readiness: options.readiness })) : null;
  const dashboardServer = dashboard ? await start(startDashboard({ ...dashboard, name, source: feed, actions: masterActions(options.control) })) : null;
  const servers: OwnServers = {
    control,
    metrics: metricsServer,
    health: healthServer,
    dashboard: dashboardServer,
    metricsUrl: metricsServer ? `http://${formatAddress({ address: metricsServer.address.host, port: metricsServer.address.port })}/metrics` : null,
    listeners: [
      ...(control.tcpAddress ? [{ flag: '--control', ...control.tcpAddress }] : []),
      ...(metricsServer ? [{ flag: '--metrics', ...metricsServer.address }] : []),
      ...(healthServer ? [{ flag: '--health', ...healthServer.address }] : []),
      ...(dashboardServer ? [{ flag: '--dashboard', ...dashboardServer.address }] : []),
    ],
    close: async () => {
      await Promise.allSettled(started.map((server) => server.close()));
    },
  };
  warnExposure(servers, options);
  return servers;
}

/** What others may reach, and tokens short enough to guess: one warning each at start. */
function warnExposure({ control, metrics, dashboard }: OwnServers, { logs, controlTcp, dashboard: dashboardOptions }: OwnServersOptions): void {
  const warn = (event: string, text: string | null, data: Record<string, unknown>): void => {
    if (text) logs.event(event, text, data, 'warn');
  };
  if (dashboard && dashboardOptions) {
    warn('dashboard-exposed', exposureWarning(dashboard.address, dashboardOptions.token), { url: dashboard.url });
    if (dashboardOptions.token !== null && !('path' in dashboard.address)) warn('dashboard-token-short', tokenWeakness('dashboard', dashboardOptions.token), { length: dashboardOptions.token.length });
  }
  if (control.tcpAddress) warn('control-exposed', controlExposure(control.tcpAddress), { address: formatControlAddress(control.tcpAddress) });
  if (controlTcp) warn('control-token-short', tokenWeakness('control', controlTcp.token), { length: controlTcp.token.length });
  if (metrics) warn('metrics-exposed', metricsExposure(metrics.address), { address: formatControlAddress(metrics.address) });
}
