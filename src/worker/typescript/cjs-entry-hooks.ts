// The hook of cjs-entry.ts, on Node's loader thread, before tsx's: the entry goes to Node's CommonJS
// loader unread; every other module is left to tsx.

/** What register() passes to initialize(). */
export interface EntryHookData {
  /** The entry's URL as given and as Node's loader names it (symlinks resolved): either may reach the hook. */
  urls: string[];
}

interface LoadResult {
  format?: string | null;
  source?: string | ArrayBuffer | Uint8Array | null;
  shortCircuit?: boolean;
}
type NextLoad = (url: string, context: object) => Promise<LoadResult>;

let entryUrls: ReadonlySet<string> = new Set();

/** Node's `initialize` hook: gets register()'s data. */
export function initialize({ urls }: EntryHookData): void {
  entryUrls = new Set(urls);
}

/** Node's `load` hook: a 'commonjs' module without a source is one Node's CommonJS loader reads and runs. */
export async function load(url: string, context: object, nextLoad: NextLoad): Promise<LoadResult> {
  if (entryUrls.has(url)) return { format: 'commonjs', source: null, shortCircuit: true };
  return nextLoad(url, context);
}
