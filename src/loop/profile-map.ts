// `profile`'s frames in the app's original sources (see source-map.ts): the profile is the master's,
// taken over the worker's inspector, and tsx's maps are in the worker's memory, so the master asks the
// worker's Node for the positions (its answer parsed as any message from a worker), and maps the rest
// through the files on disk.
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { MAX_URL_CHARS, mappedOnDisk, sourceUrl, type Position } from './source-map.js';
import type { CpuProfile } from './types.js';
import { clip } from '../errors.js';

/** What a profile's mapping needs of an inspector session on the worker. */
interface Session {
  post(method: string, params?: object): Promise<unknown>;
}

/** The most distinct positions of one profile looked up (a profile of a large app has a few thousand). */
export const MAX_MAPPED_POSITIONS = 10_000;
/** How long the worker may take to answer the lookup before the profile goes out with what the files on disk say. */
const MAPPING_TIMEOUT_MS = 2000;

/**
 * Runs in the worker: each [url, line, column] (1-based) through Node's cache of source maps, as
 * [source, line, column], or null where it has none (source maps off, or no map for that file).
 */
function mappingProbe(positions: ReadonlyArray<readonly [string, number, number]>): string {
  return `(() => {
  const maps = process.sourceMapsEnabled && typeof process.getBuiltinModule === 'function' ? process.getBuiltinModule('node:module') : null;
  const urls = maps ? process.getBuiltinModule('node:url') : null;
  return ${JSON.stringify(positions)}.map(([url, line, column]) => {
    if (!maps) return null;
    try {
      const map = maps.findSourceMap(url) ?? (url.startsWith('file:') ? maps.findSourceMap(urls.fileURLToPath(url)) : undefined);
      const entry = map?.findEntry(line - 1, column - 1);
      return entry && typeof entry.originalSource === 'string' ? [entry.originalSource, entry.originalLine + 1, entry.originalColumn + 1] : null;
    } catch {
      return null;
    }
  });
})()`;
}

const position = z.number().int().nonnegative();

/**
 * Rewrites the frames of a profile just taken from a worker (over `session`, still open) to where
 * they are in the original sources, so that its summary and the tools that open the file (DevTools,
 * speedscope) show the app's TypeScript lines. The worker's answer is parsed as any message from it;
 * a worker that does not answer in time leaves the frames as the files on disk map them. A mapped
 * frame loses its per-line ticks, which count generated lines.
 */
export async function mapProfile(session: Session, profile: CpuProfile): Promise<void> {
  const positions = new Map<string, [string, number, number]>();
  const keyOf = ({ url, lineNumber, columnNumber }: CpuProfile['nodes'][number]['callFrame']): string => `${lineNumber}:${columnNumber}:${url}`;
  for (const { callFrame } of profile.nodes) {
    if (positions.size >= MAX_MAPPED_POSITIONS) break;
    const url = callFrame.url.startsWith('/') ? pathToFileURL(callFrame.url).href : callFrame.url;
    if (!url.startsWith('file:') || callFrame.lineNumber < 0 || callFrame.columnNumber < 0) continue;
    positions.set(keyOf(callFrame), [url, callFrame.lineNumber + 1, callFrame.columnNumber + 1]);
  }
  if (positions.size === 0) return;
  const asked = [...positions.values()];
  const answers = await askWorker(session, asked);
  const found = new Map<string, Position | null>();
  [...positions.keys()].forEach((key, index) => {
    const [url, line, column] = asked[index]!;
    const answer = answers?.[index];
    const onDisk = (): Position | null => {
      const mapped = mappedOnDisk(url, line - 1, column - 1);
      return mapped.url === undefined ? null : { url: mapped.url, line: mapped.line!, column: mapped.column! };
    };
    found.set(key, answer ? { url: sourceUrl(answer[0], url), line: answer[1], column: answer[2] } : onDisk());
  });
  for (const node of profile.nodes) {
    const original = found.get(keyOf(node.callFrame));
    if (!original) continue;
    node.callFrame = { ...node.callFrame, url: original.url, lineNumber: original.line - 1, columnNumber: original.column - 1 };
    delete (node as { positionTicks?: unknown }).positionTicks;
  }
}

async function askWorker(session: Session, positions: ReadonlyArray<readonly [string, number, number]>): Promise<Array<[string, number, number] | null> | null> {
  const answers = z.object({
    result: z.object({
      value: z
        .array(z.tuple([z.string().transform((text) => clip(text, MAX_URL_CHARS)), position, position]).nullable())
        .length(positions.length),
    }),
  });
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => (timer = setTimeout(resolve, MAPPING_TIMEOUT_MS, null)));
  const reply = session.post('Runtime.evaluate', { expression: mappingProbe(positions), returnByValue: true, silent: true });
  reply.catch(() => {});
  try {
    const parsed = answers.safeParse(await Promise.race([reply, late]));
    return parsed.success ? parsed.data.result.value : null;
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}
