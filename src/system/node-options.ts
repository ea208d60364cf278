// NODE_OPTIONS=--inspect is meant for the app's workers, but Node applies it to every node process
// that inherits it: `start -d`'s master and a config module's loader opened one too (or failed to,
// "address already in use", on the port the process that started them held). The processes clusterd
// starts for itself get NODE_OPTIONS without the flags that open an inspector; a master gets the
// whole of it back for its workers (WORKER_NODE_OPTIONS_ENV), as the foreground master passes it on.

/** Set in a master's environment to the NODE_OPTIONS its workers get, when its own had flags taken out. */
export const WORKER_NODE_OPTIONS_ENV = 'CLUSTERD_WORKER_NODE_OPTIONS';

/** The flags that open an inspector as the process starts (`--inspect-port` alone opens none). */
const OPENS_INSPECTOR = /^--inspect(-brk|-wait)?(=|$)/;

/**
 * NODE_OPTIONS's words, as Node splits them (on spaces; a double-quoted part may hold spaces and
 * backslash escapes), each as written, so that the words kept are joined back unchanged.
 */
function words(options: string): { raw: string; value: string }[] {
  const found: { raw: string; value: string }[] = [];
  let index = 0;
  while (index < options.length) {
    if (/\s/.test(options[index]!)) {
      index++;
      continue;
    }
    const start = index;
    let value = '';
    let quoted = false;
    for (; index < options.length && (quoted || !/\s/.test(options[index]!)); index++) {
      const char = options[index]!;
      if (char === '"') quoted = !quoted;
      else if (char === '\\' && quoted && index + 1 < options.length) value += options[++index];
      else value += char;
    }
    found.push({ raw: options.slice(start, index), value });
  }
  return found;
}

/** NODE_OPTIONS's flags, as Node reads them (quotes and escapes undone). */
export function nodeOptionsFlags(options: string): string[] {
  return words(options).map((word) => word.value);
}

/** NODE_OPTIONS less --inspect, --inspect-brk and --inspect-wait (with or without an address). */
export function withoutInspectorFlags(options: string): string {
  const all = words(options);
  const kept = all.filter((word) => !OPENS_INSPECTOR.test(word.value));
  return kept.length === all.length ? options : kept.map((word) => word.raw).join(' ');
}

/** `env` for a node process of clusterd's own (a config module's loader): no inspector of the app's. */
export function toolEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const options = env.NODE_OPTIONS;
  if (options === undefined || withoutInspectorFlags(options) === options) return env;
  return { ...env, NODE_OPTIONS: withoutInspectorFlags(options) };
}

/** `env` for a master clusterd starts (`start -d`'s, start()'s): no inspector of its own, the workers' NODE_OPTIONS kept aside. */
export function masterEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const tool = toolEnvironment(env);
  return tool === env ? env : { ...tool, [WORKER_NODE_OPTIONS_ENV]: env.NODE_OPTIONS };
}

/** In a master started with masterEnvironment(): NODE_OPTIONS as it was given, for the workers to inherit. */
export function restoreWorkerNodeOptions(): void {
  const options = process.env[WORKER_NODE_OPTIONS_ENV];
  delete process.env[WORKER_NODE_OPTIONS_ENV];
  if (options !== undefined) process.env.NODE_OPTIONS = options;
}
