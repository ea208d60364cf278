// The dashboard page: follows /events (a snapshot, then updates) and draws each worker's figures
// and charts by hand (SVG). Every string from the master (an app's function names, exit reasons)
// goes into the page as text, never as markup.
/* global followFeed, connectionFree */ // stream.js, loaded first
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const AMBER_MS = 100;
const RED_MS = 500;
const W = 300;
const H = 60;

/** What the second chart of each worker shows (the header's "chart" menu): fields of a bucket, scaled. */
const METRICS = {
  elu: { caption: 'ELU (%)', fields: ['elu'], scale: 100, max: 100 },
  cpu: { caption: 'CPU (% of a core)', fields: ['cpu'], scale: 1 },
  memory: { caption: 'RSS / heap used (MB)', fields: ['rss', 'heap'], scale: 1 / 1e6 },
  rps: { caption: 'req/s', fields: ['rps'], scale: 1 },
  connections: { caption: 'open connections', fields: ['connections'], scale: 1 },
};

const state = {
  metric: 'elu',
  windowMs: 15 * 60_000,
  now: Date.now(),
  actions: false,
  /** Buckets by worker id, oldest first. */
  series: new Map(),
  /** Markers by id. */
  markers: new Map(),
  message: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svgEl(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

function bytes(n) {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${Math.round(n / 1024)} KiB`;
}

function ms(n) {
  return n >= 100 ? `${Math.round(n)} ms` : `${n.toFixed(1)} ms`;
}

/** What a card says of its level, beside its colour. */
const LEVEL_WORDS = { ok: 'ok', amber: `amber: lag p99 over ${AMBER_MS} ms`, red: `red: lag p99 over ${RED_MS} ms` };

/** Says `text` to a screen reader (a polite live region that keeps the last few). */
function announce(text) {
  const region = $('announce');
  region.append(el('p', {}, text));
  while (region.children.length > 3) region.firstElementChild.remove();
}

/** `ok`, `amber` or `red` for a lag p99. */
function level(lagP99) {
  if (lagP99 > RED_MS) return 'red';
  if (lagP99 > AMBER_MS) return 'amber';
  return 'ok';
}

function merge(message) {
  state.now = message.now;
  if (message.type === 'snapshot') {
    state.windowMs = message.windowMs;
    // A card gets its action buttons when it is made: after a master restarted with another token
    // setting, the cards are made again, with the buttons the header shows (or without).
    if (message.actions !== state.actions) {
      for (const card of [...$('workers').children]) {
        watcher.unobserve(card);
        card.remove();
      }
    }
    state.actions = message.actions;
    state.series = new Map();
    state.markers = new Map();
    // A master that restarted numbers its markers from 1 again: the same count gives the same
    // version, and the list would keep the old master's markers.
    delete $('marker-list').dataset.version;
    $('name').textContent = `clusterd: ${message.name}`;
    document.title = `${message.name} · clusterd`;
    $('actions').hidden = !message.actions;
    // On a unix socket actions need no token.
    $('token-label').hidden = !message.token;
    $('token').hidden = !message.token;
  }
  const since = message.now - state.windowMs;
  for (const worker of message.workers) {
    const buckets = (state.series.get(worker.id) ?? []).filter((bucket) => bucket.t > since);
    for (const bucket of worker.buckets) {
      const index = buckets.findIndex((known) => known.t === bucket.t);
      if (index === -1) buckets.push(bucket);
      else buckets[index] = bucket;
    }
    buckets.sort((a, b) => a.t - b.t);
    state.series.set(worker.id, buckets);
  }
  const live = new Set(message.workers.map((worker) => worker.id));
  for (const id of state.series.keys()) if (!live.has(id)) state.series.delete(id);
  for (const marker of message.markers) state.markers.set(marker.id, marker);
  for (const [id, marker] of state.markers) if (marker.time <= since) state.markers.delete(id);
  state.message = message;
}

/**
 * An SVG chart of `points` ([time, value] pairs) over the window, with thresholds and the markers as
 * ticks: one path per kind of marker, however many there are (a window can hold 1000), so a redraw
 * makes a handful of elements. A click picks the marker nearest to it (within TICK_HIT px).
 */
function drawChart(svg, lines, { max, thresholds = [], markers = [] }) {
  const start = state.now - state.windowMs;
  const x = (time) => ((time - start) / state.windowMs) * W;
  const y = (value) => H - Math.min(value / max, 1) * (H - 2) - 1;
  const parts = [];
  for (const [value, cls] of thresholds) {
    if (value < max) parts.push(svgEl('line', { class: `threshold ${cls}`, x1: 0, x2: W, y1: y(value), y2: y(value) }));
  }
  // Each line: [time, value] pairs, and its class (the first is drawn strongest).
  for (const { points, cls } of lines) {
    if (points.length > 0) parts.push(svgEl('polyline', { class: `line ${cls}`, points: points.map(([time, value]) => `${x(time).toFixed(1)},${y(value).toFixed(1)}`).join(' ') }));
  }
  // A failed action (a refused restart) is a kind of its own: drawn dashed, not as a restart that happened.
  const byKind = new Map();
  for (const marker of markers) {
    const position = x(marker.time).toFixed(1);
    const kind = markerKind(marker);
    const ticks = byKind.get(kind) ?? new Set();
    ticks.add(position);
    byKind.set(kind, ticks);
  }
  for (const [kind, ticks] of byKind) {
    const path = svgEl('path', { class: `tick ${kind}`, d: [...ticks].map((position) => `M${position} 0V${H}`).join('') });
    const title = svgEl('title');
    title.textContent = `${kind.replace(' ', ', ')}: click a tick for its details`;
    path.append(title);
    parts.push(path);
  }
  svg.replaceChildren(...parts);
  svg.markers = markers;
  if (!svg.onclick) svg.onclick = (event) => pickMarker(svg, event);
}

/** A marker's classes: its kind, and `failed` for an action that failed (a restart refused). */
function markerKind(marker) {
  return marker.failed ? `${marker.kind} failed` : marker.kind;
}

/** How far from a tick (in screen pixels) a click still picks its marker. */
const TICK_HIT = 4;

function pickMarker(svg, event) {
  const box = svg.getBoundingClientRect();
  if (box.width === 0) return;
  const time = state.now - state.windowMs + ((event.clientX - box.left) / box.width) * state.windowMs;
  const slack = (TICK_HIT / box.width) * state.windowMs;
  let nearest = null;
  for (const marker of svg.markers ?? []) {
    const distance = Math.abs(marker.time - time);
    if (distance <= slack && (nearest === null || distance < Math.abs(nearest.time - time))) nearest = marker;
  }
  if (nearest) showMarker(nearest);
}

function figures(parts) {
  return parts.map(([label, value]) => {
    const span = el('span');
    span.append(el('i', {}, `${label} `), el('b', {}, value));
    return span;
  });
}

/**
 * Cards on screen (or near it): only their charts are redrawn on each update, so that a page of 64
 * workers costs about what a screenful does. A card that scrolls into view is drawn at once.
 */
const onScreen = new WeakSet();
const watcher = new IntersectionObserver(
  (entries) => {
    let shown = false;
    for (const entry of entries) {
      if (!entry.isIntersecting) onScreen.delete(entry.target);
      else if (!onScreen.has(entry.target)) {
        onScreen.add(entry.target);
        shown = true;
      }
    }
    if (shown) render();
  },
  { rootMargin: '200px' },
);

function workerCard(worker) {
  let card = document.querySelector(`[data-worker-id="${worker.id}"]`);
  if (!card) {
    card = el('section', { class: 'worker', 'data-worker-id': String(worker.id) });
    watcher.observe(card);
    const head = el('div', { class: 'head' });
    head.append(el('h2'), el('span', { class: 'level' }), el('span', { class: 'state' }));
    if (state.actions) {
      // Named with the worker: a screen reader's list of buttons read "Restart" 64 times.
      const restart = el('button', { type: 'button', class: 'restart', 'aria-label': `Restart worker ${worker.id}` }, 'Restart');
      restart.addEventListener('click', () => act(`api/restart/${worker.id}`, `restart of worker ${worker.id}`));
      head.append(restart);
    }
    const charts = el('div', { class: 'charts' });
    for (const [key, caption] of [['lag', 'lag p50 / p99 / max (ms)'], ['metric', METRICS[state.metric].caption]]) {
      const figure = el('figure');
      figure.append(el('figcaption', {}, caption), svgEl('svg', { class: `chart ${key}`, viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none' }));
      charts.append(figure);
    }
    const detail = el('details', { class: 'detail' });
    detail.append(el('summary', {}, 'blocking sites'), el('ol', { class: 'sites' }), el('pre', { class: 'last-stack' }));
    card.append(head, el('p', { class: 'others', hidden: '' }), el('div', { class: 'figures' }), charts, detail);
    if (state.actions) {
      // Captures: a CPU profile (downloaded) and the loop's phase breakdown (shown here).
      const capture = el('details', { class: 'detail capture' });
      const buttons = el('div', { class: 'capture-buttons' });
      const profile = el('button', { type: 'button', class: 'profile', 'aria-label': `CPU profile of worker ${worker.id}` }, 'CPU profile');
      const loop = el('button', { type: 'button', class: 'loop', 'aria-label': `Loop breakdown of worker ${worker.id}` }, 'Loop breakdown');
      profile.addEventListener('click', () => captureProfile(worker.id, card));
      loop.addEventListener('click', () => captureLoop(worker.id, card));
      buttons.append(profile, loop);
      capture.append(el('summary', {}, 'profile, loop breakdown'), buttons, el('div', { class: 'loop-result' }));
      card.append(capture);
    }
  }
  return card;
}

function render() {
  const message = state.message;
  if (!message) return;
  const { totals } = message;
  $('totals').replaceChildren(
    ...figures([
      ['workers', `${totals.ready}/${message.workersWanted} ready${totals.blocked > 0 ? `, ${totals.blocked} blocked` : ''}`],
      ['generation', String(message.generation)],
      ['req/s', totals.rps.toFixed(1)],
      ['connections', String(totals.connections)],
      ['RSS', bytes(totals.rss)],
      ['restarts', String(totals.restarts)],
    ]),
  );
  const markers = [...state.markers.values()].sort((a, b) => a.time - b.time);
  const clusterMarkers = markers.filter((marker) => marker.worker === null);
  // Cluster charts: the sum (req/s) and the worst (lag) of the workers' buckets at each time.
  const byTime = new Map();
  for (const buckets of state.series.values()) {
    for (const bucket of buckets) {
      const known = byTime.get(bucket.t) ?? { rps: 0, lag: 0 };
      known.rps += bucket.rps;
      known.lag = Math.max(known.lag, bucket.lagP99);
      byTime.set(bucket.t, known);
    }
  }
  const times = [...byTime.keys()].sort((a, b) => a - b);
  const rps = times.map((t) => [t, byTime.get(t).rps]);
  const lag = times.map((t) => [t, byTime.get(t).lag]);
  drawChart($('cluster-rps'), [{ points: rps, cls: 'main' }], { max: Math.max(1, ...rps.map(([, v]) => v)) * 1.1, markers: clusterMarkers });
  drawChart($('cluster-lag'), [{ points: lag, cls: 'main' }], { max: Math.max(AMBER_MS * 1.2, ...lag.map(([, v]) => v * 1.1)), thresholds: [[AMBER_MS, 'amber'], [RED_MS, 'red']], markers });

  const container = $('workers');
  const cards = message.workers.map((worker) => {
    const card = workerCard(worker);
    const latest = worker.latest;
    // The worst of the last 2 s, not the last sample alone: a block once a second would flicker.
    // A blocked loop sends no samples: the master's watch on its heartbeat says how long it has been silent.
    const blocked = worker.state === 'ready' && worker.blockedMs > 0;
    // An id with no process (crashed, waiting out its restart backoff) serves nothing: red as well.
    const down = worker.pid === 0;
    // So does a worker whose app closed every server it listened on: it takes no connections (the
    // master counts it out of the ready ones), however calm its loop.
    const deaf = worker.state === 'not-listening';
    const worst = blocked || down || deaf ? 'red' : level(worker.recentLagP99);
    card.className = `worker ${worst}`;
    // In words too, not by colour alone; a change is said aloud (the announcer's live region).
    const said = blocked ? 'red: loop blocked' : down ? 'red: no process' : deaf ? 'red: not listening' : LEVEL_WORDS[worst];
    if (card.dataset.level && card.dataset.said !== said) announce(`worker ${worker.id}: ${said}`);
    card.dataset.said = said;
    card.dataset.level = worst;
    card.querySelector('.level').textContent = said;
    card.querySelector('h2').textContent = `worker ${worker.id}`;
    const state = blocked ? `blocked for ${(worker.blockedMs / 1000).toFixed(1)} s` : worker.state;
    card.querySelector('.state').textContent = `${down ? 'no process' : `pid ${worker.pid}`} · ${state} · generation ${worker.generation} · ${worker.restarts} restarts`;
    const others = worker.others ?? [];
    card.querySelector('.others').hidden = others.length === 0;
    card.querySelector('.others').textContent = others.map(otherProcess).join(' · ');
    card.querySelector('.figures').replaceChildren(
      ...figures(
        latest
          ? [
              ['lag p50/p99/max', `${ms(latest.lagP50)} / ${ms(latest.lagP99)} / ${ms(latest.lagMax)}`],
              ['worst p99, 2 s', ms(worker.recentLagP99)],
              ['ELU', `${Math.round(latest.elu * 100)}%`],
              ['CPU', `${Math.round(latest.cpu)}%`],
              ['RSS', bytes(latest.rss)],
              ['heap', bytes(latest.heap)],
              ['req/s', latest.rps.toFixed(1)],
              ['conns', String(latest.connections)],
            ]
          : [['figures', down ? 'none: no process' : 'none yet']],
      ),
    );
    const own = markers.filter((marker) => marker.worker === null || marker.worker === worker.id);
    if (onScreen.has(card)) drawWorkerCharts(card, worker.id, own);
    const sites = worker.blockedSites;
    card.querySelector('.detail summary').textContent = `blocking sites, last 5 minutes (${sites.length})`;
    card.querySelector('.sites').replaceChildren(
      ...sites.map((site) => el('li', {}, `${site.function || '(anonymous)'} (${site.url}:${site.line}): ${site.count}×, longest ${ms(site.maxMs)}`)),
    );
    const lastStack = own.findLast((marker) => marker.worker === worker.id && marker.stack && marker.stack.length > 0);
    card.querySelector('.last-stack').textContent = lastStack
      ? [`last blocked stack (${new Date(lastStack.time).toLocaleTimeString()}):`, ...lastStack.stack.map((frame) => `    at ${frame}`)].join('\n')
      : '';
    return card;
  });
  // Moved only when the set or order of workers changed: re-inserting every card costs a layout of all.
  if (cards.length !== container.children.length || cards.some((card, index) => container.children[index] !== card)) container.replaceChildren(...cards);

  // Rebuilt only when a marker came, changed or left.
  const version = `${markers.length}:${markers.reduce((top, marker) => Math.max(top, marker.seq), 0)}:${markers[0]?.id}`;
  const list = $('marker-list');
  if (list.dataset.version === version) return;
  list.dataset.version = version;
  list.replaceChildren(
    ...markers
      .slice(-200)
      .reverse()
      .map((marker) => {
        const item = el('li', { class: `marker ${markerKind(marker)}`, 'data-marker-id': String(marker.id) });
        item.append(
          el('span', { class: 'time' }, new Date(marker.time).toLocaleTimeString()),
          el('span', { class: `kind ${markerKind(marker)}` }, marker.failed ? `${marker.kind} (failed)` : marker.kind),
          el('span', {}, `${marker.text}${marker.count > 1 ? ` (×${marker.count})` : ''}`),
        );
        // Focusable and opened with Enter or Space, as a button is (a click was the only way).
        item.tabIndex = 0;
        item.setAttribute('role', 'button');
        item.addEventListener('click', () => showMarker(marker));
        item.addEventListener('keydown', (event) => {
          if (event.key !== 'Enter' && event.key !== ' ') return;
          event.preventDefault();
          showMarker(marker);
        });
        return item;
      }),
  );
}

/**
 * A line for another process of the card's id: the old worker draining (a reload's, a restart's: its
 * connections keep it up to --grace), or its successor starting.
 */
function otherProcess({ pid, state, connections }) {
  if (state === 'stopping') return `pid ${pid} draining: ${connections} ${connections === 1 ? 'connection' : 'connections'} open`;
  if (state === 'starting') return `pid ${pid} starting: its successor`;
  return `pid ${pid} ${state}`;
}

function drawWorkerCharts(card, id, markers) {
  const buckets = state.series.get(id) ?? [];
  const series = (field) => buckets.map((bucket) => [bucket.t, bucket[field]]);
  const lagMax = series('lagMax');
  drawChart(card.querySelector('svg.lag'), [{ points: series('lagP99'), cls: 'main' }, { points: series('lagP50'), cls: 'low' }, { points: lagMax, cls: 'high' }], {
    max: Math.max(AMBER_MS * 1.2, ...lagMax.map(([, v]) => v * 1.1)),
    thresholds: [[AMBER_MS, 'amber'], [RED_MS, 'red']],
    markers,
  });
  const metric = METRICS[state.metric];
  const lines = metric.fields.map((field, index) => ({ points: series(field).map(([t, v]) => [t, v * metric.scale]), cls: index === 0 ? 'main' : 'low' }));
  const top = Math.max(0, ...lines.flatMap(({ points }) => points.map(([, v]) => v)));
  drawChart(card.querySelector('svg.metric'), lines, { max: metric.max ?? Math.max(1, top * 1.1), markers });
  card.querySelector('svg.metric').parentElement.querySelector('figcaption').textContent = metric.caption;
}

function showMarker(marker) {
  const detail = $('marker-detail');
  detail.hidden = false;
  // A text that names its kind already ("reload: generation 4", "restart of worker 2 done") is not
  // prefixed with it again ("reload: reload: generation 4").
  const text = marker.text.startsWith(marker.kind) ? marker.text : `${marker.failed ? `${marker.kind} (failed)` : marker.kind}: ${marker.text}`;
  detail.textContent = [`${new Date(marker.time).toLocaleString()} ${text}`, ...(marker.stack ?? []).map((frame) => `    at ${frame}`)].join('\n');
}

/** Results listed at once, newest first. */
const MAX_RESULTS = 5;

/**
 * A line of its own in the list of recent actions, newest first: one action's result is not replaced
 * by the next's (a 409 refusal was overwritten 0.2 s later by another action's "done").
 */
function resultLine(text) {
  const list = $('action-result');
  const item = el('li', { class: 'pending' });
  const line = el('span', {}, text);
  item.append(el('span', { class: 'time' }, new Date().toLocaleTimeString()), line);
  list.prepend(item);
  while (list.children.length > MAX_RESULTS) list.lastElementChild.remove();
  return {
    /** `outcome`: 'pending', 'done' or 'failed'; `stack`: frames shown under the line (a blocked worker's). */
    say(text, outcome = 'pending', stack = []) {
      line.textContent = text;
      item.className = outcome;
      // The outcome is said aloud; a capture's seconds ticking are not.
      if (outcome !== 'pending') announce(text);
      item.querySelector('pre')?.remove();
      if (stack.length > 0) item.append(el('pre', { class: 'stack' }, stack.map((frame) => `    at ${frame}`).join('\n')));
    },
  };
}

/** POSTs an action with the token; resolves with the response, or null once the failure is on its line. */
async function post(path, what, line) {
  const token = $('token').value;
  sessionStorage.setItem('clusterd-dashboard-token', token);
  try {
    await connectionFree();
    const response = await fetch(path, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    if (response.ok) return response;
    const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
    // A worker too blocked to measure (409) says where it is stuck: that is what was wanted of it.
    line.say(`${what}: ${body.error}`, 'failed', Array.isArray(body.stack) ? body.stack.map(String) : []);
  } catch (error) {
    line.say(`${what}: ${error.message}`, 'failed');
  }
  return null;
}

async function act(path, what) {
  const line = resultLine(`${what}…`);
  if (await post(path, what, line)) line.say(`${what} done`, 'done');
}

/** Runs a capture of worker `id`, its buttons disabled and the seconds counted meanwhile; `done` gets the response. */
async function capture(kind, id, card, what, done) {
  const duration = $('capture-duration').value.trim() || '5s';
  const buttons = card.querySelectorAll('.capture-buttons button');
  const started = Date.now();
  const line = resultLine(what);
  const progress = () => line.say(`${what} (${duration}): ${Math.floor((Date.now() - started) / 1000)} s…`);
  progress();
  const timer = setInterval(progress, 1000);
  for (const button of buttons) button.disabled = true;
  try {
    const response = await post(`api/${kind}/${id}?duration=${encodeURIComponent(duration)}`, what, line);
    clearInterval(timer);
    if (response) await done(response, line);
  } catch (error) {
    line.say(`${what}: ${error.message}`, 'failed');
  } finally {
    clearInterval(timer);
    for (const button of buttons) button.disabled = false;
  }
}

function captureProfile(id, card) {
  const what = `CPU profile of worker ${id}`;
  return capture('profile', id, card, what, async (response, line) => {
    const name = /filename="([^"]+)"/.exec(response.headers.get('Content-Disposition') ?? '')?.[1] ?? `worker${id}.cpuprofile`;
    const url = URL.createObjectURL(await response.blob());
    const link = el('a', { href: url, download: name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    line.say(`${what}: downloaded ${name} (open it in Chrome DevTools, Performance, or speedscope)`, 'done');
  });
}

const PHASES = ['timers', 'pending', 'poll', 'check', 'close', 'nextTick', 'microtasks', 'idle'];

function captureLoop(id, card) {
  const what = `loop breakdown of worker ${id}`;
  return capture('loop', id, card, what, async (response, line) => {
    const report = await response.json();
    card.querySelector('.loop-result').replaceChildren(...loopView(report));
    line.say(`${what} done`, 'done');
  });
}

/** `clusterd loop`'s table: the phases (ms per second, share of the window, callbacks), then the top callbacks. */
function loopView(report) {
  const caption = el('p', {}, `${(report.durationMs / 1000).toFixed(1)} s of its loop at ${new Date().toLocaleTimeString()}, ${Math.round(report.iterationsPerSec)} iterations/s; measuring cost ${report.overheadPct.toFixed(1)}% of it`);
  const table = el('table', { class: 'phases' });
  const head = el('tr');
  for (const title of ['phase', 'ms/s', '%', 'callbacks']) head.append(el('th', {}, title));
  table.append(head);
  for (const name of PHASES) {
    const phase = report.phases[name] ?? { msPerSec: 0, count: 0 };
    const row = el('tr', { 'data-phase': name });
    row.append(el('td', {}, name), el('td', {}, phase.msPerSec.toFixed(1)), el('td', {}, (phase.msPerSec / 10).toFixed(1)), el('td', {}, name === 'idle' ? '' : String(phase.count)));
    table.append(row);
  }
  const parts = [caption, table];
  if (report.callbacks.length > 0) {
    const list = el('ol', { class: 'callbacks' });
    for (const callback of report.callbacks.slice(0, 10)) {
      const where = callback.url ? ` ${callback.function || '(anonymous)'} ${callback.url}:${callback.line}` : '';
      list.append(el('li', {}, `${callback.totalMs.toFixed(1)} ms, ${callback.count}×, max ${callback.maxMs.toFixed(1)} ms: ${callback.type}${where}`));
    }
    parts.push(el('p', {}, 'callbacks that took the most time:'), list);
  }
  return parts;
}

/**
 * The stream: whether it is open, what the header says of it, why the dashboard refused it (null if
 * it did not), when its last message came (this clock), its tick.
 */
const link = { open: false, text: 'connecting…', why: null, receivedAt: 0, tickMs: 1000 };

/**
 * The header's connection state, and the whole view greyed out when its figures are not live: the
 * stream dropped, or it stays open with nothing on it for 3 ticks (a master stopped with SIGSTOP, or
 * hung). The cards kept their last colours and figures, 'ready' and green, as if current.
 */
function showConnection() {
  const silentMs = Date.now() - link.receivedAt;
  const silent = link.open && link.receivedAt > 0 && silentMs > Math.max(3 * link.tickMs, 2000);
  const stale = state.message !== null && (!link.open || silent);
  const connection = $('connection');
  connection.textContent = silent ? `no update for ${Math.round(silentMs / 1000)} s` : link.text;
  connection.className = link.open && !silent ? 'connection live' : 'connection';
  if (stale !== document.body.classList.contains('stale')) announce(stale ? `not live: ${connection.textContent}` : 'live again');
  document.body.classList.toggle('stale', stale);
  const note = $('stale-note');
  note.hidden = !stale;
  if (stale) {
    const why = silent ? 'the master sends nothing (stopped or hung?)' : link.why ? `the dashboard refused this page its live stream (${link.why})` : 'the connection to the master is lost';
    note.textContent = `Not live: ${why}. These figures are from ${new Date(link.receivedAt).toLocaleTimeString()}.`;
  }
}

/** A feed message, from the stream this tab holds or another tab's relay. */
function receive(message) {
  merge(message);
  if (message.type === 'snapshot') link.tickMs = Math.max(250, message.statsIntervalMs || 1000);
  link.receivedAt = Date.now();
  showConnection();
  // A page in a background tab keeps its data and draws once it is shown again.
  if (!document.hidden) render();
}

function setLink(open, text, why) {
  // Just opened: its snapshot is on its way (not yet silent).
  if (open && !link.open) link.receivedAt = Date.now();
  link.open = open;
  link.text = text;
  link.why = why;
  showConnection();
}

setInterval(showConnection, 1000);

$('metric').addEventListener('change', () => {
  state.metric = Object.hasOwn(METRICS, $('metric').value) ? $('metric').value : 'elu';
  render();
});

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) render();
});

$('token').value = sessionStorage.getItem('clusterd-dashboard-token') ?? '';
// Enter in the token field submitted the form: the page reloaded, with a '?' in its URL.
$('actions').addEventListener('submit', (event) => event.preventDefault());
$('reload').addEventListener('click', () => act('api/reload', 'reload'));
followFeed({ onMessage: receive, onLink: setLink });
