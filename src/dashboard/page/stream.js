// The page's feed and its connections to the dashboard. Over HTTP/1.1 a browser opens at most 6
// connections to a site, and each tab's /events stream held one for good: a seventh tab never
// loaded, and every tab's actions waited for a free connection (a Restart the page had long given up
// on ran when a tab closed). So the tabs of one browser share one stream: one tab, elected with a
// Web Lock, follows /events and relays each message over a BroadcastChannel; the others start from
// /api/status and follow the relay. When that tab closes, its lock passes to another, which opens
// the stream. An action first makes sure a connection is free (connectionFree), so that it is sent
// now or not at all.
/* exported followFeed, connectionFree */
'use strict';

/** Waits before following /events again after an answer other than 200, doubling to the last. */
const RETRY_MS = [1000, 2000, 4000, 8000, 15_000];

/**
 * Calls `onMessage(message)` with each feed message (a snapshot first, and again after a gap) and
 * `onLink(open, text, why)` when the stream opens or drops, in whichever tab holds it (`why`: what
 * the dashboard said when it refused the stream, as a 503 when every place is taken).
 */
function followFeed({ onMessage, onLink }) {
  // A channel and a lock belong to the whole site (scheme, host and port), and a proxy may serve two
  // clusters' dashboards under /a/ and /b/ of one site: the page's own folder, which its relative
  // `events` and `api/...` resolve against, names the dashboard they share.
  const scope = `clusterd-dashboard ${new URL('.', location.href).pathname}`;
  // Web Locks need a secure context (https, or a loopback address): elsewhere each tab has its own stream.
  const relay = typeof BroadcastChannel === 'function' && navigator.locks ? new BroadcastChannel(scope) : null;
  // Whether a snapshot has been drawn (from the stream, the relay or /api/status). Until one is,
  // /api/status is asked for it: the stream may be refused (every place taken) for a long while,
  // and a page that holds the stream but had nothing drawn stayed blank all that time.
  let drawn = false;
  // Relayed updates that came before this tab had its snapshot.
  let waiting = [];
  const draw = (message) => {
    if (message.type === 'snapshot') drawn = true;
    if (drawn) onMessage(message);
  };
  const loadSnapshot = async (attempt) => {
    try {
      const response = await fetch('api/status', { cache: 'no-store' });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const snapshot = await response.json();
      if (drawn) return;
      // The updates relayed meanwhile that are newer than it go on top of it.
      const later = waiting.filter((message) => message.now > snapshot.now);
      waiting = [];
      draw(snapshot);
      for (const message of later) draw(message);
    } catch {
      if (drawn) return;
      setTimeout(() => loadSnapshot(attempt + 1), RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)]);
    }
  };
  void loadSnapshot(0);
  if (!relay) return openStream({ onMessage: draw, onLink });
  let leading = false;
  let link = { kind: 'link', open: false, text: 'connecting…', why: null };
  relay.addEventListener('message', ({ data }) => {
    if (leading) {
      if (data.kind === 'hello') relay.postMessage(link);
    } else if (data.kind === 'link') onLink(data.open, data.text, data.why ?? null);
    else if (data.kind === 'message') {
      if (drawn || data.message.type === 'snapshot') draw(data.message);
      else waiting.push(data.message);
    }
  });
  relay.postMessage({ kind: 'hello' });
  navigator.locks.request(`${scope} stream`, () => {
    leading = true;
    waiting = [];
    openStream({
      onMessage: (message) => {
        relay.postMessage({ kind: 'message', message });
        draw(message);
      },
      onLink: (open, text, why) => {
        link = { kind: 'link', open, text, why };
        relay.postMessage(link);
        onLink(open, text, why);
      },
    });
    // Held for the tab's life: closing it hands the stream to another tab.
    return new Promise(() => {});
  });
}

/**
 * Follows /events: a dropped stream the EventSource retries by itself, a refused one (503) is retried here.
 * An EventSource does not say why it was refused: one GET of /events asks, and the header says it.
 */
function openStream({ onMessage, onLink }) {
  let retries = 0;
  const open = () => {
    const source = new EventSource('events');
    source.addEventListener('open', () => {
      retries = 0;
      onLink(true, 'live', null);
    });
    source.addEventListener('message', (event) => onMessage(JSON.parse(event.data)));
    source.addEventListener('error', () => {
      if (source.readyState !== EventSource.CLOSED) return onLink(false, 'disconnected: retrying…', null);
      // An answer other than 200 (503: too many pages; a proxy's 502) closes an EventSource for good.
      void refusal().then((why) => {
        const wait = RETRY_MS[Math.min(retries++, RETRY_MS.length - 1)];
        onLink(false, `${why === null ? 'disconnected' : `refused (${why})`}: retrying in ${wait / 1000} s…`, why);
        setTimeout(open, wait);
      });
    });
  };
  open();
}

/**
 * Why the dashboard refuses /events (its error, or `HTTP <status>`); null when it answers with a stream now, or not at all.
 * A real GET of /events, which, once a place is free, takes it for the moment until the abort below
 * ends it: acceptable, as this runs only after a refusal, once per retry (seconds apart), and the place is
 * freed at once (the server drops a stream from its count when its response closes); a HEAD or a separate
 * probe route would have to repeat the limit's logic, and could say a place is free that the EventSource then misses.
 */
async function refusal() {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), SEND_WAIT_MS);
  try {
    const response = await fetch('events', { cache: 'no-store', signal: controller.signal });
    if (response.ok) return null;
    const body = await response.json().catch(() => ({}));
    return typeof body.error === 'string' ? body.error : `HTTP ${response.status}`;
  } catch {
    return null;
  } finally {
    // A stream it got (a place freed since) is ended here, the place left for the EventSource.
    controller.abort();
    clearTimeout(timer);
  }
}

/** How long an action waits for a connection to the dashboard before it is not sent. */
const SEND_WAIT_MS = 5000;

/**
 * Resolves once a connection to the dashboard answers; rejects, saying the action was not sent, after
 * SEND_WAIT_MS. A POST the browser queues behind busy connections is sent whenever one frees, long
 * after the page said it failed, and aborting it then does not stop the master: so a HEAD of a small
 * file goes first, with a timeout, and the action goes on the connection it leaves free. A HEAD
 * aborted while queued (or sent to a master that hangs) does nothing.
 */
async function connectionFree() {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), SEND_WAIT_MS);
  try {
    await fetch('app.css', { method: 'HEAD', cache: 'no-store', signal: controller.signal });
  } catch (error) {
    if (!controller.signal.aborted) throw new Error(`not sent: ${error.message}`);
    throw new Error(`not sent: no answer from the dashboard within ${SEND_WAIT_MS / 1000} s (the browser's connections to it are busy, or the master is not answering)`);
  } finally {
    clearTimeout(timer);
  }
}
