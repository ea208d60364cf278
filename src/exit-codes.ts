// The master's exit codes are a contract with scripts and supervisors (systemd, containers, CI).
// Keep this table and the README's "Exit codes" section in step.
export const ExitCode = {
  /** Stopped on request; every worker drained within --grace. */
  OK: 0,
  /** Unexpected internal failure of clusterd itself. */
  INTERNAL: 1,
  /** Bad command line: unknown flag, invalid value, missing or unreadable entry file, a TypeScript project that cannot be run. */
  USAGE: 2,
  /** The app could not boot: --max-boot-failures failed boots in a row, none serving (at start-up of all workers, then of one worker id). */
  BOOT_FAILED: 3,
  /** A port the app listens on could not be bound (in use, permission denied). */
  LISTEN_FAILED: 4,
  /**
   * Stopped on request, but some workers were still busy after --grace and were killed. `stop` exits
   * so too when the master says it did; `reload` and `restart` name such workers but exit 0 (their new
   * workers serve).
   */
  GRACE_EXPIRED: 5,
  /** Stopped by a second SIGINT/SIGTERM while draining: workers were killed at once (and `stop`, told so by the master). */
  FORCED: 6,
  /** A control command could not reach the named cluster (none by that name, no answer in time, stopping), or the worker it names. */
  NOT_FOUND: 7,
  /** The cluster's TCP control listener refused the call: missing or wrong --control-token. */
  UNAUTHENTICATED: 8,
  /** A control command was refused because a reload or restart is already in progress. */
  BUSY: 9,
  /** `clusterd stop`: the master had not exited by --grace plus a margin after it was asked to stop. */
  STOP_TIMEOUT: 10,
  /** `clusterd profile` / `loop`: the worker's event loop is blocked, so nothing was measured; its stack is printed. */
  BLOCKED: 11,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];
