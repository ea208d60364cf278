import { ExitCode, type ExitCodeValue } from './exit-codes.js';

/** Every failure clusterd expects carries a stable code and the exit code the CLI should use. */
export class ClusterdError extends Error {
  readonly code: string;
  readonly exitCode: ExitCodeValue;

  constructor(code: string, message: string, { exitCode = ExitCode.INTERNAL, cause }: { exitCode?: ExitCodeValue; cause?: unknown } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ClusterdError';
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** A flag or option value the user gave is not acceptable. */
export class UsageError extends ClusterdError {
  constructor(message: string) {
    super('ERR_CLUSTERD_USAGE', message, { exitCode: ExitCode.USAGE });
    this.name = 'UsageError';
  }
}

/** The app failed to start often enough in a row that restarting it again is pointless. */
export class BootError extends ClusterdError {
  readonly lastOutput: string[];

  constructor(message: string, lastOutput: string[]) {
    super('ERR_CLUSTERD_BOOT', message, { exitCode: ExitCode.BOOT_FAILED });
    this.name = 'BootError';
    this.lastOutput = lastOutput;
  }
}

/** The master could not bind an address the app asked for. */
export class ListenError extends ClusterdError {
  constructor(message: string, cause?: unknown) {
    super('ERR_CLUSTERD_LISTEN', message, { exitCode: ExitCode.LISTEN_FAILED, cause });
    this.name = 'ListenError';
  }
}

/** Renders any thrown value as the one line a CLI user sees. */
export function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] ?? text;
}
