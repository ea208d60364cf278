// The dashboard feed's messages as `clusterd dashboard` receives them from a master (the Dashboard
// rpc): another process's JSON, so checked field by field, with every array and string bounded,
// before the mirror or a page uses any of it.
import { z } from 'zod';
import { MAX_OTHERS, type FeedMessage } from './feed.js';
import { BUCKETS, MARKER_KINDS, MAX_FEED_TEXT, MAX_MARKERS, type Marker } from './history.js';
import { ClusterdError } from '../errors.js';
import { MAX_INSTANCES } from '../options.js';
import { readyAndBlocked } from '../control/worker-rows.js';

const text = z.string().max(MAX_FEED_TEXT);
const count = z.number().int().min(0);
const figure = z.number();

const figures = {
  lagP50: figure,
  lagP99: figure,
  lagMax: figure,
  elu: figure,
  cpu: figure,
  rss: figure,
  heap: figure,
  rps: figure,
  connections: figure,
};

const bucket = z.object({ t: z.number().int(), samples: count, ...figures });

const worker = z.object({
  id: z.number().int().min(1).max(MAX_INSTANCES),
  // 0 for a wanted id no process holds (one waiting out its restart backoff).
  pid: count,
  state: z.string().max(40),
  generation: count,
  restarts: count,
  // Absent from a master older than the field.
  blockedMs: count.default(0),
  latest: z.object(figures).nullable(),
  recentLagP99: figure,
  blockedSites: z.array(z.object({ function: text, url: text, line: count, count, maxMs: figure, lastSeen: z.number() })).max(100),
  buckets: z.array(bucket).max(BUCKETS + 1),
  // Absent from a master older than the field. A newer master may keep more than MAX_OTHERS: the
  // newest are kept (the feed lists them oldest first), not the message refused.
  others: z.preprocess(
    (value) => (Array.isArray(value) ? value.slice(-MAX_OTHERS) : value),
    z.array(z.object({ pid: count, state: z.string().max(40), connections: count })).max(MAX_OTHERS),
  ).default([]),
});

const marker = z.object({
  id: z.number().int().min(1),
  seq: count,
  time: z.number(),
  // Any kind, so that one a newer master adds (as `listening` was) does not refuse the whole message:
  // `markers` then drops the markers of kinds this version cannot draw.
  kind: z.string().max(40),
  worker: z.number().int().min(1).max(MAX_INSTANCES).nullable(),
  text,
  stack: z.array(text).max(1000).optional(),
  count: count.optional(),
  failed: z.boolean().optional(),
});

const base = {
  now: z.number(),
  generation: count,
  workersWanted: count,
  totals: z.object({ workers: count, ready: count, blocked: count.default(0), desired: count.default(0), rps: figure, inflight: count, connections: count, rss: figure, restarts: count, memoryReplacements: count.default(0) }),
  // A worker id's serving process (or, waiting to restart, none) and, during a reload, none twice: at most one view per id.
  workers: z.array(worker).max(MAX_INSTANCES),
  markers: z.array(marker).max(MAX_MARKERS).transform((markers) => markers.filter(knownKind)),
};

const KNOWN_KINDS: ReadonlySet<string> = new Set(MARKER_KINDS);

function knownKind<T extends { kind: string }>(marker: T): marker is T & Pick<Marker, 'kind'> {
  return KNOWN_KINDS.has(marker.kind);
}

const feedMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('snapshot'),
    name: z.string().max(64),
    windowMs: z.number().int().min(1),
    bucketMs: z.number().int().min(1),
    statsIntervalMs: count,
    ...base,
  }),
  z.object({ type: z.literal('update'), ...base }),
]) satisfies z.ZodType<FeedMessage>;

/** Parses one Dashboard message's JSON; a ClusterdError naming the first bad field otherwise. */
export function parseFeedMessage(json: string): FeedMessage {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw malformed(`not JSON (${(error as Error).message})`);
  }
  const parsed = feedMessage.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw malformed(`${issue.path.length > 0 ? issue.path.join('.') : 'the message'}: ${issue.message}`);
  }
  // A master older than `totals.blocked` counted a blocked worker ready: counted from the rows, as `status` does.
  const message = parsed.data;
  return { ...message, totals: { ...message.totals, ...readyAndBlocked(message.totals, message.workers) } };
}

function malformed(what: string): ClusterdError {
  return new ClusterdError('ERR_CLUSTERD_CONTROL', `the cluster sent a malformed dashboard message: ${what}`);
}
