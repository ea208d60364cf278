// Where the master's log sink writes: the master's stdout and stderr, or --log-file (the daemon's
// log too), timestamped; and the warnings about that file said once it is open.
import { LogFile, type LogFileOptions } from './log-file.js';
import { LogSink, type LogFormat } from './logs.js';
import { terminalsUnblocked, watchOwnStdio, type StdioName } from './own-stdio.js';

export interface MasterLogOutput {
  logs: LogSink;
  logFile: LogFile | null;
  /** Whether the master's own stdout or stderr failed: the sink's, or watched apart beside a log file. */
  stdioLost: (name: StdioName) => boolean;
}

/** Opens the log file if one is given (throws as LogFile does when it cannot). */
export function openLogOutput({ format, file }: { format: LogFormat; file: LogFileOptions | null }): MasterLogOutput {
  if (!file) {
    const logs = new LogSink({ format, output: terminalsUnblocked() });
    return { logs, logFile: null, stdioLost: (name) => logs.lost(name) };
  }
  const logFile = new LogFile(file);
  const logs = new LogSink({ format, output: { stdout: logFile, stderr: logFile }, timestamps: true });
  const stdioLost = watchOwnStdio(logs, logFile.path);
  logFile.onRecovered = (lines, error) =>
    logs.event('log-file-recovered', `${lines} ${lines === 1 ? 'line' : 'lines'} not written to ${logFile.path} (${error}); it takes them again`, { path: logFile.path, lines, error }, 'warn');
  logFile.onGone = () =>
    logs.event(
      'log-file-gone',
      `log file ${logFile.path} was removed or moved away (without SIGUSR1): opened anew as it was to rotate, the kept files left as they were (what was written in between is in the moved file, or went with the removed one)`,
      { path: logFile.path },
      'warn',
    );
  if (logFile.directoryOpen) logs.event('log-file-exposed', logFile.directoryOpen, { path: logFile.path }, 'warn');
  if (logFile.stdioStays) {
    logs.event(
      'log-stdio-stays',
      `the master's own stdout and stderr (a Node warning, a crash's stack) stay on the log file it started with: after a rotation or SIGUSR1 they are not in ${logFile.path} (${logFile.stdioStays})`,
      { path: logFile.path },
      'warn',
    );
  }
  return { logs, logFile, stdioLost };
}
