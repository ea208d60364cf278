// What the master says once at start about the conditions it runs under: options that work
// against each other, what the kernel or the cgroup changes, what is missing, and the sockets
// systemd passed.
import { adoptActivatedSockets } from './activation.js';
import { reusePortMigration } from './balancers/shared.js';
import type { ClusterConfig } from './cluster-config.js';
import type { LogSink } from './logs.js';
import { noteNativeMissing } from './native-missing.js';
import { formatAddress } from '../address.js';
import { usableCpus } from '../system/cpus.js';
import { nativeHelper, nativeUnavailable } from '../system/native.js';

/** Says each of them that holds, with the sockets from systemd (taken here: they serve the app's matching listens). */
export function noteStartConditions(cluster: ClusterConfig): void {
  const { logs, watchdogMs, reportBlockedMs } = cluster;
  noteCpuQuota(cluster.instances, logs);
  if (watchdogMs > 0 && reportBlockedMs > 0 && reportBlockedMs >= watchdogMs) {
    logs.event(
      'report-blocked-too-late',
      `--report-blocked ${reportBlockedMs} ms is not below --watchdog ${watchdogMs} ms: the watchdog replaces a blocked worker first, so blocks are counted only as it replaces them; give a shorter --report-blocked`,
      { watchdogMs, reportBlockedMs },
      'warn',
    );
  }
  if (cluster.balance === 'reuseport' && reusePortMigration() === 'off') {
    logs.event(
      'reuseport-resets',
      '--balance reuseport: net.ipv4.tcp_migrate_req is off, so connections waiting in a draining worker\'s queue are reset on reload, restart and scale down; `sysctl -w net.ipv4.tcp_migrate_req=1` (Linux >= 5.14) moves them to another worker. On a stop the sysctl cannot help: the last worker to close has no other to pass its queue to, and what waits there is reset',
      {},
      'warn',
    );
  }
  if (cluster.entry.typescriptCacheOff !== null) logs.event('ts-cache-off', cluster.entry.typescriptCacheOff, {}, 'warn');
  noteActivatedSockets(logs);
  // Without the native helper, said once (as PID 1 too: no orphan reaping either).
  if (!nativeHelper()) noteNativeMissing({ why: nativeUnavailable() ?? '', logs });
}

/**
 * A cgroup CPU quota below the CPUs the process may run on (a container's CPU limit) is said once:
 * `-i max` follows it, and more workers than it allows share its time, throttled.
 */
function noteCpuQuota(instances: number, logs: LogSink): void {
  const { quota, available } = usableCpus();
  if (quota === null || quota >= available) return;
  const over = instances > quota;
  logs.event(
    'cpu-quota',
    `this cgroup's CPU quota is ${quota} of the ${available} CPUs (-i max means ${quota})${over ? `: ${instances} workers share it, throttled` : ''}`,
    { quota, available, instances },
    over ? 'warn' : 'info',
  );
}

/** Socket activation (systemd): takes the sockets it passed, and says which, and which were skipped. */
function noteActivatedSockets(logs: LogSink): void {
  const activation = adoptActivatedSockets();
  if (!activation) return;
  const list = activation.sockets.map((socket) => `${socket.name} ${formatAddress(socket.sockname)} (fd ${socket.fd})`).join(', ') || 'none';
  logs.event('socket-activation', `sockets from systemd: ${list}${activation.skipped.length ? `; skipped: ${activation.skipped.join('; ')}` : ''}`, {
    sockets: activation.sockets.map((socket) => ({ fd: socket.fd, name: socket.name, address: formatAddress(socket.sockname) })),
    skipped: activation.skipped,
  }, activation.skipped.length ? 'warn' : 'info');
}
