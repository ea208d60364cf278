// The environment systemd gives the process it starts: the master reads it and takes it out, so
// that neither its workers nor what they start act as the unit's main process (sd_notify's and
// sd_listen_fds' unset_environment).

/** Socket activation's (activation.ts). */
export const SOCKET_ACTIVATION_ENV = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'] as const;
/** sd_notify's and the watchdog's (sd-notify.ts). */
export const NOTIFY_ENV = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'] as const;

/** Takes both out of `env`. */
export function dropSystemdEnv(env: NodeJS.ProcessEnv, names: readonly string[] = [...SOCKET_ACTIVATION_ENV, ...NOTIFY_ENV]): void {
  for (const name of names) delete env[name];
}
