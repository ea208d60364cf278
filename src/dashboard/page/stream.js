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
 * `onLink(open, text)` when the stream opens or drops, in whichever tab holds it.
 */
function followFeed({ onMessage, onLink }) {
  // A channel and a lock belong to the whole site (scheme, host and port), and a proxy may serve two
  // clusters' dashboards under /a/ and /b/ of one site: the page's own folder, which its relative
  // `events` and `api/...` resolve against, names the dashboard they share.
  const scope = `clusterd-dashboard ${new URL('.', location.href).pathname}`;
  // Web Locks need a secure context (https, or a loopback address): elsewhere each tab has its own stream.
  const relay = typeof BroadcastChannel === 'function' && navigator.locks ? new BroadcastChannel(scope) : null;
  if (!relay) return openStream({ onMessage, onLink });
  let leading = false;
  let link = { kind: 'link', open: false, text: 'connecting…' };
  // Relayed updates that came before this tab had its snapshot; null once it has one.
  let waiting = [];
  const take = (message) => {
    if (waiting === null) return onMessage(message);
    if (message.type !== 'snapshot') return void waiting.push(message);
    waiting = null;
    onMessage(message);
  };
  relay.addEventListener('message', ({ data }) => {
    if (leading) {
      if (data.kind === 'hello') relay.postMessage(link);
    } else if (data.kind === 'link') onLink(data.open, data.text);
    else if (data.kind === 'message') take(data.message);
  });
  const loadSnapshot = async (attempt) => {
    try {
      const response = await fetch('api/status', { cache: 'no-store' });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const snapshot = await response.json();
      if (leading || waiting === null) return;
      // The updates relayed meanwhile that are newer than it go on top of it.
      const later = waiting.filter((message) => message.now > snapshot.now);
      waiting = null;
      onMessage(snapshot);
      for (const message of later) onMessage(message);
    } catch {
      if (leading || waiting === null) return;
      setTimeout(() => loadSnapshot(attempt + 1), RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)]);
    }
  };
  relay.postMessage({ kind: 'hello' });
  void loadSnapshot(0);
  navigator.locks.request(`${scope} stream`, () => {
    leading = true;
    waiting = null;
    openStream({
      onMessage: (message) => {
        relay.postMessage({ kind: 'message', message });
        onMessage(message);
      },
      onLink: (open, text) => {
        link = { kind: 'link', open, text };
        relay.postMessage(link);
        onLink(open, text);
      },
    });
    // Held for the tab's life: closing it hands the stream to another tab.
    return new Promise(() => {});
  });
}

/** Follows /events: a dropped stream the EventSource retries by itself, a refused one (503) is retried here. */
function openStream({ onMessage, onLink }) {
  let retries = 0;
  const open = () => {
    const source = new EventSource('events');
    source.addEventListener('open', () => {
      retries = 0;
      onLink(true, 'live');
    });
    source.addEventListener('message', (event) => onMessage(JSON.parse(event.data)));
    source.addEventListener('error', () => {
      if (source.readyState !== EventSource.CLOSED) return onLink(false, 'disconnected: retrying…');
      // An answer other than 200 (503: too many pages; a proxy's 502) closes an EventSource for good.
      const wait = RETRY_MS[Math.min(retries++, RETRY_MS.length - 1)];
      onLink(false, `disconnected: retrying in ${wait / 1000} s…`);
      setTimeout(open, wait);
    });
  };
  open();
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
