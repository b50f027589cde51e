// Switchboard dashboard: hand-written, no framework, no build step, nothing from a CDN.
// Views: flows (list + timeline), live tail, dead letters, receipts, jobs, charts. The view and
// its selection live in the URL hash (#/flows?flow=t:…&q=…), so a link reopens what you saw.

const SVG = 'http://www.w3.org/2000/svg';
const main = document.getElementById('main');
const statusBox = document.getElementById('status');
const searchBox = document.getElementById('q');
const PATTERNS = ['call', 'job', 'message', 'event'];

/** Builds an element: h('td', { class: 'mono' }, 'text', child). Text is always text, never HTML. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs ?? {})) if (value !== undefined && value !== null) el.setAttribute(key, String(value));
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces an element's children, skipping empty ones (null, undefined, false). */
function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false));
}

async function api(path, init) {
  const response = await fetch(`api/${path}`, { headers: { accept: 'application/json' }, ...init });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail ?? body.title ?? `HTTP ${response.status}`);
  return body;
}

let statusTimer;
function say(text) {
  statusBox.textContent = text;
  statusBox.classList.add('show');
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => statusBox.classList.remove('show'), 6000);
}

// --- the URL: #/view?key=value

function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [view, query] = hash.split('?');
  return { view: view || 'flows', params: new URLSearchParams(query ?? '') };
}

function go(view, params = {}, replace = false) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== ''));
  const hash = `#/${view}${query.toString() ? `?${query}` : ''}`;
  if (hash === location.hash) return render();
  if (replace) history.replaceState(null, '', hash);
  else history.pushState(null, '', hash);
  render();
}

// --- formatting

const pad = (n, w = 2) => String(n).padStart(w, '0');
function clock(at) {
  const d = new Date(at);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}
function ms(value) {
  if (value === undefined || value === null) return '';
  if (value >= 10_000) return `${(value / 1000).toFixed(1)} s`;
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;
}
function ago(at) {
  const seconds = Math.max(0, Math.round((Date.now() - at) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}
function bytes(n) {
  if (n === undefined) return '';
  if (n >= 1048576) return `${(n / 1048576).toFixed(1)} MB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${n} B`;
}
const short = (id) => (id && id.length > 14 ? `${id.slice(0, 8)}…${id.slice(-4)}` : (id ?? ''));
const patternBadges = (patterns) => patterns.map((p) => h('span', { class: `badge p-${p}` }, p));
const statusText = (status) => h('span', { class: `s-${status}` }, status);

function patternOf(event) {
  switch (event.kind) {
    case 'call.request':
    case 'call.response':
    case 'call.attempt':
      return 'call';
    case 'handler.start':
    case 'handler.end':
      return event.via === 'job' || event.jobId ? 'job' : event.via === 'message' ? 'message' : 'call';
    case 'claimcheck.put':
    case 'claimcheck.get':
      return 'event';
    default:
      if (event.kind.startsWith('job.')) return 'job';
      if (event.kind.startsWith('message.') || event.kind === 'dead-letter') return event.topic?.endsWith('.events') ? 'event' : 'message';
      return 'other';
  }
}

function keyOf(event) {
  if (event.traceId) return `t:${event.traceId}`;
  if (event.messageId) return `m:${event.messageId}`;
  if (event.jobId) return `j:${event.jobId}`;
  if (event.idempotencyKey) return `k:${event.idempotencyKey}`;
  return undefined;
}

/** One line saying what an event is. */
function describe(event) {
  const name = event.operation ?? event.type ?? '';
  const parts = [];
  switch (event.kind) {
    case 'call.request':
      parts.push(`call ${name} →${event.contract ?? ''}`);
      break;
    case 'call.response':
      parts.push(
        `call ${name} ${event.status ?? ''} in ${ms(event.durationMs)}${event.attempts > 1 ? `, ${event.attempts} attempts` : ''}`,
      );
      break;
    case 'call.attempt':
      parts.push(`attempt ${event.attempt} of ${name}: ${event.status ?? event.outcome}`);
      break;
    case 'handler.start':
      parts.push(`${name} started (${event.via})`);
      break;
    case 'handler.end':
      parts.push(`${name} ${event.status ?? ''} in ${ms(event.durationMs)} (${event.via})`);
      break;
    case 'job.submit':
      parts.push(`submit ${name}: ${event.status ?? ''} job ${short(event.jobId)}`);
      break;
    case 'job.poll':
      parts.push(`poll #${event.poll} of job ${short(event.jobId)}: ${event.jobStatus ?? event.status}`);
      break;
    case 'job.run':
      parts.push(`run ${name} → ${event.jobStatus ?? event.outcome} in ${ms(event.durationMs)}`);
      break;
    case 'job.state':
    case 'job.complete':
      parts.push(`job ${short(event.jobId)} ${event.status}`);
      break;
    case 'message.publish':
      parts.push(`${event.sendKind ?? 'send'} ${name} → ${event.topic}`);
      break;
    case 'message.deliver':
      parts.push(`delivery #${event.attempt} to ${event.group}: ${event.outcome ?? ''}${event.reason ? ` (${event.reason})` : ''}`);
      break;
    case 'message.settle':
      parts.push(`settle ${event.outcome} (${event.group})`);
      break;
    case 'claimcheck.put':
      parts.push(`claim check put ${bytes(event.bytes)}`);
      break;
    case 'claimcheck.get':
      parts.push(`claim check fetch ${bytes(event.bytes)}: ${VERDICT_TEXT[claimCheckVerdict(event)]}`);
      break;
    case 'dead-letter':
      parts.push(`dead letter (${event.reason}) in ${event.group}`);
      break;
    default:
      parts.push(event.kind);
  }
  if (event.error && event.kind !== 'dead-letter') parts.push(`— ${event.error.code ?? event.error.title ?? 'error'}`);
  return parts.join(' ');
}

// A claim-check fetch verifies the bytes against the event's datahash before it ends: ended ok is verified.
function claimCheckVerdict(event) {
  if (event.outcome === 'ok' && !event.error) return 'verified';
  if (event.error?.code === 'SB_CLAIM_CHECK_HASH_MISMATCH') return 'mismatch';
  if (event.error?.code === 'SB_CLAIM_CHECK_MISSING') return 'missing';
  if (event.error?.code === 'SB_CLAIM_CHECK_UNVERIFIED') return 'unverified';
  return 'failed';
}
const VERDICT_TEXT = {
  verified: 'fetched, sha-256 ok',
  mismatch: 'sha-256 mismatch',
  missing: 'blob missing',
  unverified: 'read in part, not verified',
  failed: 'fetch failed',
};

// --- services (header chips)

let info;
async function refreshInfo() {
  try {
    info = await api('info');
    const box = document.getElementById('services');
    box.replaceChildren(
      h('span', { class: 'chip up', title: 'this service' }, info.service),
      ...info.peers.map((peer) =>
        h(
          'span',
          { class: `chip ${peer.ok ? 'up' : 'down'}`, title: peer.ok ? peer.url : `${peer.url}: ${peer.error ?? 'not reached yet'}` },
          peer.service ?? peer.url,
        ),
      ),
    );
  } catch {
    // The next refresh tries again.
  }
}

// --- views

let cleanup = () => {};
let renderToken = 0;

async function render() {
  cleanup();
  cleanup = () => {};
  const token = ++renderToken;
  const { view, params } = route();
  for (const link of document.querySelectorAll('nav a')) {
    if (link.dataset.view === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (document.activeElement !== searchBox) searchBox.value = params.get('q') ?? (view === 'receipts' ? params.get('id') : null) ?? '';
  const views = {
    flows: flowsView,
    tail: tailView,
    'dead-letters': deadLettersView,
    receipts: receiptsView,
    jobs: jobsView,
    charts: chartsView,
  };
  const fn = views[view] ?? flowsView;
  try {
    await fn(params, () => token === renderToken);
  } catch (error) {
    if (token === renderToken) fill(main, h('p', { class: 'empty' }, `Could not load: ${error.message}`));
  }
  if (token !== renderToken) return;
  document.title = `Switchboard — ${document.querySelector('nav a[aria-current]')?.textContent ?? 'Flows'}`;
  // Tests (and scripts) can wait for this: the view of this URL is on screen.
  document.body.dataset.rendered = location.hash || '#/flows';
}

/** Arrow keys move between rows of a list; Enter or Space opens the focused row. */
function rowKeys(tbody) {
  tbody.addEventListener('keydown', (e) => {
    const row = e.target.closest('tr');
    if (!row) return;
    if (e.key === 'ArrowDown' || e.key === 'j') {
      row.nextElementSibling?.focus();
      e.preventDefault();
    } else if (e.key === 'ArrowUp' || e.key === 'k') {
      row.previousElementSibling?.focus();
      e.preventDefault();
    } else if ((e.key === 'Enter' || e.key === ' ') && e.target === row) {
      row.click();
      e.preventDefault();
    }
  });
}

// Flows: the list on the left, the selected flow's timeline on the right.
async function flowsView(params, current) {
  const q = params.get('q') ?? '';
  const selected = params.get('flow');
  const filters = { pattern: params.get('pattern') ?? '', status: params.get('status') ?? '' };
  const query = new URLSearchParams({ limit: '200', fresh: '1' });
  if (q) query.set('q', q);
  if (filters.pattern) query.set('pattern', filters.pattern);
  if (filters.status) query.set('status', filters.status);
  const list = await api(`flows?${query}`);
  if (!current()) return;
  if (q && !selected && list.flows.length >= 1) return go('flows', { q, flow: list.flows[0].key, ...filters }, true);

  const select = (name, options) =>
    h(
      'select',
      { 'aria-label': name, onchange: (e) => go('flows', { q, ...filters, [name]: e.target.value }) },
      options.map(([value, label]) => h('option', { value, selected: filters[name] === value }, label)),
    );
  const tbody = h('tbody');
  for (const flow of list.flows) {
    const row = h(
      'tr',
      {
        tabindex: 0,
        'aria-selected': flow.key === selected ? 'true' : 'false',
        'data-key': flow.key,
        onclick: () => go('flows', { q, ...filters, flow: flow.key }),
      },
      h('td', { class: 'mono' }, clock(flow.started)),
      h('td', {}, h('div', {}, flow.title), h('div', { class: 'muted' }, flow.services.join(' · '))),
      h('td', {}, patternBadges(flow.patterns)),
      h('td', {}, statusText(flow.status)),
      h('td', { class: 'mono' }, ms(flow.durationMs)),
    );
    tbody.append(row);
  }
  rowKeys(tbody);
  const listBox = h(
    'div',
    { class: 'list' },
    list.flows.length === 0
      ? h('p', { class: 'empty' }, q ? `No recorded flow matches “${q}”.` : 'No flows recorded yet.')
      : h(
          'table',
          { 'aria-label': 'Flows' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['started', 'flow', 'patterns', 'status', 'took'].map((t) => h('th', {}, t)),
            ),
          ),
          tbody,
        ),
  );
  const detail = h(
    'section',
    { class: 'panel', 'aria-label': 'Flow timeline' },
    h('p', { class: 'empty' }, 'Select a flow to see its timeline.'),
  );
  fill(
    main,
    h(
      'div',
      { class: 'toolbar' },
      h('h2', {}, q ? `Flows matching “${q}” (${list.total})` : `Flows (${list.total})`),
      select('pattern', [['', 'any pattern'], ...PATTERNS.map((p) => [p, p])]),
      select('status', [
        ['', 'any status'],
        ['ok', 'ok'],
        ['error', 'error'],
        ['pending', 'pending'],
      ]),
      q ? h('button', { onclick: () => go('flows', filters) }, 'Clear search') : null,
    ),
    h('div', { class: 'split' }, listBox, detail),
  );
  if (selected) {
    const row = tbody.querySelector(`tr[data-key="${CSS.escape(selected)}"]`);
    row?.scrollIntoView({ block: 'nearest' });
    try {
      const flow = await api(`flow?key=${encodeURIComponent(selected)}`);
      if (!current()) return;
      fill(detail, ...flowDetail(flow));
      detail.dataset.events = String(flow.summary.events);
    } catch (error) {
      fill(detail, h('p', { class: 'empty' }, `Flow ${selected}: ${error.message}`));
    }
  }
  // New flows appear while nothing is selected; a selected flow refreshes while it is pending.
  const timer = setInterval(async () => {
    if (!current()) return;
    if (selected) {
      const flow = await api(`flow?key=${encodeURIComponent(selected)}`).catch(() => undefined);
      if (flow && current() && String(flow.summary.events) !== detail.dataset.events) {
        fill(detail, ...flowDetail(flow));
        detail.dataset.events = String(flow.summary.events);
      }
    }
  }, 1500);
  cleanup = () => clearInterval(timer);
}

function flowDetail(flow) {
  const { summary, events } = flow;
  const ids = [
    ['trace', summary.traces],
    ['MessageId', summary.messageIds],
    ['job', summary.jobIds],
    ['Idempotency-Key', summary.idempotencyKeys],
  ].filter(([, list]) => list.length > 0);
  const table = h('tbody');
  const rows = [];
  for (const [i, event] of events.entries()) {
    rows.push(
      h(
        'tr',
        { 'data-n': i + 1 },
        h('td', { class: 'mono' }, `+${ms(event.at - summary.started)}`),
        h('td', {}, event.service),
        h('td', {}, h('span', { class: `badge p-${patternOf(event)}` }, event.kind)),
        h('td', {}, describe(event), event.error?.detail ? h('div', { class: 's-error' }, event.error.detail) : null),
      ),
    );
  }
  table.append(...rows);
  const svg = timeline(summary, events);
  const replay = replayControls(summary, events, svg, rows);
  return [
    h('h2', {}, summary.title, ' ', statusText(summary.status)),
    h(
      'dl',
      { class: 'kv' },
      h('dt', {}, 'started'),
      h('dd', {}, `${new Date(summary.started).toLocaleString()} (${ago(summary.started)}), took ${ms(summary.durationMs)}`),
      ids.flatMap(([label, list]) => [
        h('dt', {}, label),
        h(
          'dd',
          { class: 'mono' },
          list.map((id, i) => [
            i > 0 ? ', ' : '',
            label === 'MessageId' ? h('a', { href: `#/receipts?id=${encodeURIComponent(id)}`, title: 'receipts of this message' }, id) : id,
          ]),
        ),
      ]),
    ),
    h('h3', {}, 'Timeline'),
    replay,
    h('div', { class: 'timeline' }, svg),
    h(
      'div',
      { class: 'legend' },
      h('span', { class: 'p-call' }, '▬ call (latency, status)'),
      h('span', { class: 'p-job' }, '◆ job: 202 → polls → result'),
      h('span', { class: 'p-message' }, '● message: send → attempts → processed'),
      h('span', { class: 'p-event' }, '● event: fan-out to every group, ⇩ claim-check fetch'),
      h('span', { class: 's-error' }, '✕ failed / dead letter'),
    ),
    h('h3', {}, `Events (${events.length})`),
    h(
      'table',
      { 'aria-label': 'Events of the flow' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['at', 'service', 'kind', 'what'].map((t) => h('th', {}, t)),
        ),
      ),
      table,
    ),
  ];
}

/**
 * Replay of a flow: steps through its events in order (previous, next, a scrubber, or play at 1×,
 * 4× or 16× of the recorded time, a gap between two events shown at most MAX_REPLAY_GAP_MS long),
 * marking the current one on the timeline and in the event list. Its position is `at` in the URL
 * (1 is the first event).
 */
const MAX_REPLAY_GAP_MS = 3000;
function replayControls(summary, events, svg, rows) {
  const n = events.length;
  let at = Math.min(n, Math.max(0, Number.parseInt(route().params.get('at') ?? '0', 10) || 0));
  let speed = 1;
  let timer;
  const label = h('span', { class: 'dvr-label mono', 'aria-live': 'polite' });
  const scrub = h('input', {
    type: 'range',
    min: 1,
    max: Math.max(1, n),
    value: Math.max(1, at),
    'aria-label': 'Event of the flow',
    oninput: (e) => {
      stop();
      show(Number(e.target.value));
    },
  });
  const step = (delta) => {
    stop();
    show(Math.min(n, Math.max(1, (at || (delta > 0 ? 0 : n + 1)) + delta)));
  };
  const prev = h(
    'button',
    { 'data-step': 'prev', 'aria-label': 'Previous event', title: 'Previous event (,)', onclick: () => step(-1) },
    '◀',
  );
  const next = h('button', { 'data-step': 'next', 'aria-label': 'Next event', title: 'Next event (.)', onclick: () => step(1) }, '▶');
  const play = h('button', { 'data-step': 'play', 'aria-pressed': 'false', onclick: () => (timer ? stop() : start()) }, 'Play');
  const speeds = h(
    'select',
    { 'aria-label': 'Replay speed', onchange: (e) => (speed = Number(e.target.value)) },
    [1, 4, 16].map((k) => h('option', { value: k }, `${k}× recorded time`)),
  );
  const box = h('div', { class: 'dvr toolbar', role: 'group', 'aria-label': 'Replay the flow' }, prev, play, next, speeds, scrub, label);
  function show(i) {
    at = i;
    const event = events[i - 1];
    for (const row of rows) {
      const current = Number(row.dataset.n) === i;
      row.classList.toggle('current', current);
      if (current) row.setAttribute('aria-current', 'true');
      else row.removeAttribute('aria-current');
    }
    svg.showAt(event);
    box.dataset.at = String(i);
    scrub.value = String(Math.max(1, i));
    label.textContent = event
      ? `${i}/${n} +${ms(event.at - summary.started)} ${event.service}: ${describe(event)}`
      : `${n} events: step or play to replay them`;
    if (event) rows[i - 1]?.scrollIntoView({ block: 'nearest' });
    const { view, params } = route();
    if (i > 0) params.set('at', String(i));
    else params.delete('at');
    history.replaceState(null, '', `#/${view}?${params}`);
  }
  function stop() {
    clearTimeout(timer);
    timer = undefined;
    play.textContent = 'Play';
    play.setAttribute('aria-pressed', 'false');
  }
  function tick() {
    if (!box.isConnected || at >= n) return stop();
    show(at + 1);
    if (at >= n) return stop();
    const gap = Math.min(MAX_REPLAY_GAP_MS, Math.max(0, events[at].at - events[at - 1].at) / speed);
    timer = setTimeout(tick, gap);
  }
  function start() {
    if (at >= n) at = 0;
    play.textContent = 'Pause';
    play.setAttribute('aria-pressed', 'true');
    timer = setTimeout(tick, 0);
  }
  // Shown once the panel is in the page (the event list's rows scroll into view).
  queueMicrotask(() => {
    if (at > 0) show(at);
    else {
      label.textContent = `${n} events: step or play to replay them`;
      box.dataset.at = '0';
    }
  });
  return box;
}

/** The swimlane timeline: one lane per service, pattern-aware glyphs, arrows between lanes. */
function timeline(summary, events) {
  const lanes = [];
  for (const event of events) if (!lanes.includes(event.service)) lanes.push(event.service);
  for (const event of events) {
    // A call or job to a contract whose service has no events yet still gets its lane.
    if ((event.kind === 'call.request' || event.kind === 'job.submit') && event.contract && !lanes.includes(event.contract))
      lanes.push(event.contract);
  }
  const laneH = 64;
  const left = 110;
  const width = 980;
  const top = 24;
  const height = top + lanes.length * laneH + 10;
  const span = Math.max(1, summary.durationMs);
  const x = (at) => left + ((at - summary.started) / span) * (width - left - 190);
  const y = (service) => top + lanes.indexOf(service) * laneH + laneH / 2;
  const svg = s('svg', {
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': `Timeline of ${summary.title} across ${lanes.join(', ')}`,
  });
  svg.append(
    s(
      'defs',
      {},
      s(
        'marker',
        { id: 'head', viewBox: '0 0 8 8', refX: 7, refY: 4, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
        s('path', { d: 'M0,0 L8,4 L0,8 z', fill: 'currentColor', class: 'axis' }),
      ),
    ),
  );
  for (let i = 0; i <= 4; i++) {
    const at = summary.started + (span * i) / 4;
    svg.append(s('text', { x: x(at), y: 12, class: 'axis', 'text-anchor': i === 0 ? 'start' : 'middle' }, `+${ms(at - summary.started)}`));
  }
  for (const lane of lanes) {
    svg.append(s('line', { x1: left - 6, x2: width - 10, y1: y(lane), y2: y(lane), class: 'lane' }));
    svg.append(s('text', { x: 8, y: y(lane) + 4, class: 'lane-label' }, lane));
  }
  const title = (el, text) => {
    el.append(s('title', {}, text));
    return el;
  };
  const bar = (service, at, duration, cls, label, text, dy = 0) => {
    const x1 = x(at);
    const w = Math.max(3, x(at + (duration ?? 0)) - x1);
    const g = s('g', {});
    g.append(title(s('rect', { x: x1, y: y(service) - 7 + dy, width: w, height: 14, rx: 3, class: cls }), text));
    if (label) g.append(s('text', { x: x1 + 2, y: y(service) - 11 + dy }, label));
    svg.append(g);
  };
  const dot = (service, at, cls, text, r = 5, dy = 0) =>
    svg.append(title(s('circle', { cx: x(at), cy: y(service) + dy, r, class: cls }), text));
  const mark = (service, at, glyph, cls, text, dy = 0) =>
    svg.append(title(s('text', { x: x(at), y: y(service) + 4 + dy, 'text-anchor': 'middle', class: cls }, glyph), text));
  const arrow = (from, at1, to, at2, cls) => {
    if (!lanes.includes(from) || !lanes.includes(to) || from === to) return;
    const y1 = y(from) + (y(to) > y(from) ? 8 : -8);
    const y2 = y(to) + (y(to) > y(from) ? -9 : 9);
    svg.append(s('path', { d: `M${x(at1)},${y1} L${x(at2)},${y2}`, class: `arrow ${cls ?? ''}` }));
  };

  const handlersBy = (service, operation) =>
    events.filter((e) => e.kind === 'handler.end' && e.service === service && e.operation === operation);
  const polls = new Map();
  for (const event of events) {
    const p = patternOf(event);
    const failed = event.outcome === 'error' || (typeof event.status === 'number' && event.status >= 400);
    switch (event.kind) {
      case 'call.response': {
        bar(
          event.service,
          event.at,
          event.durationMs,
          failed ? 'g-err' : 'g-call',
          `${event.operation} ${event.status ?? ''} ${ms(event.durationMs)}`,
          describe(event),
          14,
        );
        const callee = event.contract;
        const handler = callee
          ? handlersBy(callee, event.operation).find((hd) => hd.at >= event.at - 5 && hd.at <= event.at + (event.durationMs ?? 0))
          : undefined;
        if (callee) arrow(event.service, event.at, callee, handler?.at ?? event.at + (event.durationMs ?? 0) / 2);
        break;
      }
      case 'call.request':
        if (
          !events.some(
            (e) =>
              e.kind === 'call.response' && e.traceId === event.traceId && e.operation === event.operation && e.service === event.service,
          )
        ) {
          bar(event.service, event.at, summary.ended - event.at, 'g-call g-open', `${event.operation} …`, 'call in flight', 14);
        }
        break;
      case 'handler.end':
        if (event.via === 'message' || event.via === 'job') break; // its delivery, or the job's run, is drawn instead
        bar(
          event.service,
          event.at,
          event.durationMs,
          failed ? 'g-err' : `g-${p}`,
          `${event.operation} ${event.status ?? ''} ${ms(event.durationMs)}`,
          describe(event),
        );
        break;
      case 'handler.start':
        if (
          event.via !== 'message' &&
          event.via !== 'job' &&
          !events.some(
            (e) =>
              e.kind === 'handler.end' && e.service === event.service && e.operation === event.operation && Math.abs(e.at - event.at) < 2,
          )
        ) {
          bar(event.service, event.at, summary.ended - event.at, `g-${p} g-open`, `${event.operation} …`, 'running');
        }
        break;
      case 'job.submit': {
        mark(event.service, event.at, '◆', 'g-job', describe(event), 14);
        svg.append(s('text', { x: x(event.at) + 8, y: y(event.service) + 26 }, `${event.status ?? ''} ${event.operation}`));
        const run = events.find((e) => e.kind === 'job.run' && e.jobId === event.jobId);
        if (event.contract) arrow(event.service, event.at, event.contract, run?.at ?? event.at + (event.durationMs ?? 0));
        break;
      }
      case 'job.poll': {
        const list = polls.get(event.jobId) ?? [];
        list.push(event);
        polls.set(event.jobId, list);
        dot(event.service, event.at, event.jobStatus === 'succeeded' ? 'g-ok g-job' : 'g-job g-open', describe(event), 3.5, 14);
        break;
      }
      case 'job.run':
        bar(
          event.service,
          event.at,
          event.durationMs,
          event.jobStatus === 'failed' || failed ? 'g-err' : 'g-job',
          `run ${event.operation} → ${event.jobStatus ?? ''}`,
          describe(event),
          14,
        );
        break;
      case 'job.complete':
        mark(
          event.service,
          event.at,
          event.status === 'succeeded' ? '✓' : '✕',
          event.status === 'succeeded' ? 'g-job' : 'g-err',
          describe(event),
        );
        break;
      case 'message.publish': {
        dot(event.service, event.at, event.outcome === 'error' ? 'g-err' : `g-${p}`, describe(event), 6);
        svg.append(s('text', { x: x(event.at) + 8, y: y(event.service) + 24 }, `${event.sendKind ?? 'send'} ${event.type ?? ''}`));
        for (const delivery of events.filter((e) => e.kind === 'message.deliver' && e.messageId === event.messageId)) {
          if (
            delivery.attempt === 1 ||
            !events.some(
              (e) => e.kind === 'message.deliver' && e.messageId === event.messageId && e.group === delivery.group && e.at < delivery.at,
            )
          ) {
            arrow(event.service, event.at, delivery.service, delivery.at, `stroke-${p}`);
          }
        }
        break;
      }
      case 'message.deliver': {
        const cls = event.outcome === 'dead-letter' ? 'g-err' : event.outcome === 'retry' ? 'g-warn' : `g-${p}`;
        // A delivery after the message was dead-lettered in this group is its replay.
        const replay = events.some(
          (e) => e.kind === 'dead-letter' && e.messageId === event.messageId && e.group === event.group && e.at <= event.at,
        );
        bar(
          event.service,
          event.at,
          event.durationMs,
          cls,
          `${replay ? 'replay ' : ''}#${event.attempt} ${event.outcome ?? ''}`,
          describe(event),
        );
        break;
      }
      case 'dead-letter':
        mark(event.service, event.at, '✕', 'g-err', describe(event), 18);
        svg.append(s('text', { x: x(event.at) + 8, y: y(event.service) + 24, class: 'g-err' }, `dead letter: ${event.reason ?? ''}`));
        break;
      case 'claimcheck.put':
        mark(event.service, event.at, '⇧', 'g-event', describe(event), 16);
        break;
      case 'claimcheck.get': {
        const verdict = claimCheckVerdict(event);
        const cls = verdict === 'verified' ? 'g-event' : 'g-err';
        mark(event.service, event.at, '⇩', cls, describe(event), 16);
        svg.append(
          s('text', { x: x(event.at) + 8, y: y(event.service) + 24, class: `${cls} claimcheck-verdict` }, `⇩ ${VERDICT_TEXT[verdict]}`),
        );
        break;
      }
      default:
        break;
    }
  }
  // The replay's cursor: a line at the current event's time and a ring on its lane.
  const cursor = s('g', { class: 'dvr-cursor', visibility: 'hidden' });
  const cursorLine = s('line', { y1: top - 4, y2: height - 4, class: 'dvr-line' });
  const cursorRing = s('circle', { r: 12, class: 'dvr-ring' });
  cursor.append(cursorLine, cursorRing);
  svg.showAt = (event) => {
    if (!event) return cursor.setAttribute('visibility', 'hidden');
    const cx = x(event.at);
    cursorLine.setAttribute('x1', cx);
    cursorLine.setAttribute('x2', cx);
    cursorRing.setAttribute('cx', cx);
    cursorRing.setAttribute('cy', lanes.includes(event.service) ? y(event.service) : top);
    cursor.setAttribute('visibility', 'visible');
    svg.dataset.current = `${event.service}:${event.seq}`;
  };
  for (const [, list] of polls) {
    const first = list[0];
    const last = list[list.length - 1];
    svg.append(
      s(
        'text',
        { x: x(first.at) + 60, y: y(first.service) + 38 },
        `${list.length} poll${list.length === 1 ? '' : 's'} → ${last.jobStatus ?? last.status}`,
      ),
    );
  }
  svg.append(cursor);
  return svg;
}

// Live tail: every event as it is recorded, newest first; pause keeps them for later.
async function tailView(params, current) {
  let paused = params.get('paused') === '1';
  const held = [];
  const tbody = h('tbody', { 'aria-live': 'off' });
  const counter = h('span', { class: 'muted' });
  const pauseButton = h('button', { 'aria-pressed': String(paused), onclick: () => toggle() }, paused ? 'Resume' : 'Pause');
  const update = () => {
    counter.textContent = paused ? `paused, ${held.length} new event(s) held` : `${tbody.children.length} shown`;
    counter.className = paused ? 'paused' : 'muted';
  };
  const toggle = () => {
    paused = !paused;
    pauseButton.textContent = paused ? 'Resume' : 'Pause';
    pauseButton.setAttribute('aria-pressed', String(paused));
    history.replaceState(null, '', paused ? '#/tail?paused=1' : '#/tail');
    if (!paused) for (const event of held.splice(0)) add(event);
    update();
  };
  const add = (event) => {
    const key = keyOf(event);
    const row = h(
      'tr',
      { tabindex: 0, onclick: () => key && go('flows', { flow: key }) },
      h('td', { class: 'mono' }, clock(event.at)),
      h('td', {}, event.service),
      h('td', {}, h('span', { class: `badge p-${patternOf(event)}` }, event.kind)),
      h('td', {}, describe(event)),
      h('td', { class: 'mono muted' }, short(event.messageId ?? event.jobId ?? event.traceId ?? '')),
    );
    tbody.prepend(row);
    while (tbody.children.length > 500) tbody.lastElementChild.remove();
  };
  rowKeys(tbody);
  fill(
    main,
    h('div', { class: 'toolbar' }, h('h2', {}, 'Live tail'), pauseButton, counter),
    h(
      'div',
      { class: 'list' },
      h(
        'table',
        { 'aria-label': 'Live events' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['at', 'service', 'kind', 'what', 'id'].map((t) => h('th', {}, t)),
          ),
        ),
        tbody,
      ),
    ),
  );
  update();
  const source = new EventSource('api/stream?backlog=200');
  source.addEventListener('flow-event', (message) => {
    if (!current()) return;
    const event = JSON.parse(message.data);
    if (paused) held.push(event);
    else add(event);
    update();
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) say('The live stream closed; reload to reconnect.');
  };
  const onKey = (e) => {
    if (e.key === 'p' && e.target === document.body) toggle();
  };
  document.addEventListener('keydown', onKey);
  cleanup = () => {
    source.close();
    document.removeEventListener('keydown', onKey);
  };
}

// Dead letters: every service's, browsed without changing them; replay one, selected or all, dry-run first if you like.
async function deadLettersView(params, current) {
  const status = params.get('status') ?? 'pending';
  const selectedId = params.get('id');
  const page = await api(`dead-letters?status=${encodeURIComponent(status)}&limit=200`);
  if (!current()) return;
  const chosen = new Set();
  const dryRun = h('input', { type: 'checkbox', id: 'dry-run' });
  const limit = h('input', { type: 'number', id: 'replay-limit', min: 1, max: 1000, value: 100, 'aria-label': 'Replay at most' });
  const output = h('pre', { id: 'replay-result', hidden: true });
  const replay = async (service, body) => {
    const result = await api('dead-letters/replay', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ service, dryRun: dryRun.checked, limit: Number(limit.value) || 100, ...body }),
    });
    return result;
  };
  const run = async (jobs) => {
    try {
      const results = [];
      for (const [service, body] of jobs) results.push(await replay(service, body));
      output.hidden = false;
      output.textContent = JSON.stringify(results.length === 1 ? results[0] : results, null, 2);
      const total = results.reduce((n, r) => n + (r.dryRun ? r.wouldReplay : r.replayed), 0);
      say(dryRun.checked ? `Dry run: ${total} dead letter(s) would be replayed.` : `Replayed ${total} dead letter(s).`);
      if (!dryRun.checked) setTimeout(() => current() && render(), 800);
    } catch (error) {
      say(`Replay failed: ${error.message}`);
    }
  };
  const byService = (ids) => {
    const groups = new Map();
    for (const item of page.items) if (ids.has(item.id)) groups.set(item.service, [...(groups.get(item.service) ?? []), item.id]);
    return [...groups].map(([service, list]) => [service, { ids: list }]);
  };
  const replaySelected = h('button', { disabled: true, onclick: () => run(byService(chosen)) }, 'Replay selected');
  const services = [...new Set(page.items.map((item) => item.service))];
  const tbody = h('tbody');
  for (const item of page.items) {
    const box = h('input', {
      type: 'checkbox',
      'aria-label': `select ${item.messageId}`,
      onclick: (e) => e.stopPropagation(),
      onchange: (e) => {
        if (e.target.checked) chosen.add(item.id);
        else chosen.delete(item.id);
        replaySelected.disabled = chosen.size === 0;
        replaySelected.textContent = `Replay selected (${chosen.size})`;
      },
    });
    const last = item.attempts[item.attempts.length - 1];
    tbody.append(
      h(
        'tr',
        {
          tabindex: 0,
          'aria-selected': item.id === selectedId ? 'true' : 'false',
          'data-message-id': item.messageId,
          onclick: () => go('dead-letters', { status, id: item.id, service: item.service }),
        },
        h('td', {}, box),
        h('td', {}, item.service),
        h('td', {}, h('span', { class: 's-error' }, item.reason), h('div', { class: 'muted' }, last?.error?.detail ?? item.detail ?? '')),
        h('td', {}, item.type ?? '', h('div', { class: 'muted mono' }, item.topic)),
        h('td', { class: 'mono' }, item.messageId),
        h('td', {}, item.attempts.length),
        h('td', {}, item.status, item.replayCount ? h('div', { class: 'muted' }, `replayed ×${item.replayCount}`) : null),
        h('td', { class: 'mono' }, ago(item.deadLetteredAt)),
        h(
          'td',
          {},
          item.status === 'pending'
            ? h(
                'button',
                {
                  onclick: (e) => {
                    e.stopPropagation();
                    run([[item.service, { ids: [item.id] }]]);
                  },
                },
                'Replay',
              )
            : '',
        ),
      ),
    );
  }
  rowKeys(tbody);
  const detail = h(
    'section',
    { class: 'panel', 'aria-label': 'Dead letter' },
    h('p', { class: 'empty' }, 'Select a dead letter to see its attempts.'),
  );
  fill(
    main,
    h(
      'div',
      { class: 'toolbar' },
      h('h2', {}, `Dead letters (${page.items.length})`),
      h(
        'select',
        { 'aria-label': 'status', onchange: (e) => go('dead-letters', { status: e.target.value }) },
        ['pending', 'replayed', 'all'].map((value) => h('option', { value, selected: value === status }, value)),
      ),
      replaySelected,
      h(
        'button',
        {
          disabled: services.length === 0 || status === 'replayed',
          onclick: () => run(services.map((service) => [service, { all: true }])),
        },
        'Replay all',
      ),
      h('label', {}, 'at most ', limit),
      h('label', {}, dryRun, ' dry run'),
    ),
    page.errors?.length ? h('p', { class: 's-error' }, page.errors.map((e) => `${e.service}: ${e.error}`).join('; ')) : null,
    page.items.length === 0
      ? h('p', { class: 'empty' }, status === 'pending' ? 'No pending dead letters.' : 'No dead letters.')
      : h(
          'div',
          { class: 'list' },
          h(
            'table',
            { 'aria-label': 'Dead letters' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ['', 'service', 'reason', 'type', 'MessageId', 'attempts', 'status', 'when', ''].map((t) => h('th', {}, t)),
              ),
            ),
            tbody,
          ),
        ),
    output,
    detail,
  );
  if (selectedId) {
    const entry = await api(
      `dead-letters/${encodeURIComponent(selectedId)}?service=${encodeURIComponent(params.get('service') ?? '')}`,
    ).catch((e) => ({ error: e.message }));
    if (!current()) return;
    if (entry.error) fill(detail, h('p', { class: 'empty' }, entry.error));
    else {
      fill(
        detail,
        h('h2', {}, `Dead letter ${entry.messageId}`),
        h(
          'dl',
          { class: 'kv' },
          ['service', 'group', 'topic', 'type', 'source', 'reason', 'detail', 'status', 'size'].flatMap((k) => [
            h('dt', {}, k),
            h('dd', {}, k === 'size' ? bytes(entry.size) : (entry[k] ?? '')),
          ]),
          h('dt', {}, 'flow'),
          h(
            'dd',
            {},
            h('a', { href: `#/flows?q=${encodeURIComponent(entry.messageId)}` }, 'open the flow'),
            ' · ',
            h('a', { href: `#/receipts?id=${encodeURIComponent(entry.messageId)}` }, 'receipts'),
          ),
        ),
        h('h3', {}, 'Attempts, newest first'),
        h(
          'table',
          {},
          h(
            'tbody',
            {},
            [...entry.attempts]
              .reverse()
              .map((a) =>
                h(
                  'tr',
                  {},
                  h('td', {}, `#${a.attempt}`),
                  h('td', { class: 'mono' }, clock(a.at)),
                  h('td', {}, a.error?.code ?? '', ' ', a.error?.detail ?? ''),
                ),
              ),
          ),
        ),
        h('h3', {}, 'Headers'),
        h('pre', {}, JSON.stringify(entry.headers, null, 2)),
        entry.bodyShown
          ? [h('h3', {}, 'Body'), h('pre', {}, entry.body)]
          : h('p', { class: 'muted' }, 'The body is not shown (payloads are redacted; the service can allow it with showBodies).'),
      );
    }
  }
}

// Receipts by MessageId: every service's receipt, and the deliveries the recorders saw.
async function receiptsView(params, current) {
  const id = params.get('id') ?? '';
  const input = h('input', { type: 'text', value: id, 'aria-label': 'MessageId', placeholder: 'MessageId', class: 'mono', size: 44 });
  const form = h(
    'form',
    {
      class: 'toolbar',
      onsubmit: (e) => {
        e.preventDefault();
        go('receipts', { id: input.value.trim() });
      },
    },
    h('h2', {}, 'Receipts'),
    input,
    h('button', { type: 'submit' }, 'Show'),
  );
  fill(main, form);
  if (!id) {
    main.append(h('p', { class: 'empty' }, 'Enter a MessageId, or open one from a flow or a dead letter.'));
    return;
  }
  const result = await api(`receipts/${encodeURIComponent(id)}`);
  if (!current()) return;
  const rows = [];
  for (const { service, receipt } of result.receipts) {
    for (const group of receipt?.groups ?? []) {
      rows.push(
        h(
          'tr',
          { 'data-group': group.group },
          h('td', {}, service),
          h('td', {}, group.group),
          h(
            'td',
            {},
            h(
              'span',
              { class: group.state === 'processed' ? 's-ok' : group.state === 'dead-lettered' ? 's-error' : 's-pending' },
              group.state,
            ),
          ),
          h('td', {}, group.attempts ?? ''),
          h('td', { class: 'mono' }, group.result ?? group.error?.detail ?? ''),
        ),
      );
    }
  }
  main.append(
    h(
      'p',
      {},
      result.flow
        ? h('a', { href: `#/flows?flow=${encodeURIComponent(result.flow)}` }, 'Open the flow of this message')
        : h('span', { class: 'muted' }, 'No recorded flow carries this MessageId.'),
    ),
    rows.length === 0
      ? h('p', { class: 'empty' }, 'No service has a receipt for this MessageId.')
      : h(
          'table',
          { 'aria-label': 'Receipts' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['service', 'group', 'state', 'attempts', 'result'].map((t) => h('th', {}, t)),
            ),
          ),
          h('tbody', {}, rows),
        ),
    h('h3', {}, 'Deliveries recorded'),
    h(
      'table',
      {},
      h(
        'tbody',
        {},
        result.deliveries.map((e) =>
          h('tr', {}, h('td', { class: 'mono' }, clock(e.at)), h('td', {}, e.service), h('td', {}, e.kind), h('td', {}, describe(e))),
        ),
      ),
    ),
  );
  // A receipt that is not final yet is asked again.
  const final = result.receipts.every(({ receipt }) =>
    (receipt?.groups ?? []).every((g) => g.state === 'processed' || g.state === 'dead-lettered'),
  );
  if (!final) {
    const timer = setTimeout(() => current() && render(), 1500);
    cleanup = () => clearTimeout(timer);
  }
}

/** A job's progress (`ctx.progress({ percent, message })`), or any other JSON a store holds. */
function progressText(progress) {
  if (progress === undefined || progress === null) return '';
  if (typeof progress === 'object' && (typeof progress.percent === 'number' || typeof progress.message === 'string')) {
    return [typeof progress.percent === 'number' ? `${progress.percent}%` : '', progress.message ?? ''].filter(Boolean).join(' ');
  }
  return JSON.stringify(progress).slice(0, 80);
}

// Jobs: those in progress first (each with a Cancel, as DELETE on its monitor), then the recently finished, refreshed every second.
async function jobsView(_params, current) {
  const cancelButton = (j) =>
    h(
      'button',
      {
        class: 'cancel-job',
        'aria-label': `Cancel job ${j.jobId}`,
        // The row opens the job's flow: the button's click and keys are its own.
        onkeydown: (event) => event.stopPropagation(),
        onclick: async (event) => {
          event.stopPropagation();
          event.currentTarget.disabled = true;
          try {
            const result = await api('jobs/cancel', {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ service: j.heldBy ?? j.service, id: j.jobId }),
            });
            say(result.outcome === 'canceled' ? `Job ${j.jobId} canceled.` : `Cancel of job ${j.jobId} requested.`);
          } catch (error) {
            say(`Cancel failed: ${error.message}`);
          }
          draw().catch(() => {});
        },
      },
      'Cancel',
    );
  const draw = async () => {
    const { jobs } = await api('jobs');
    if (!current()) return;
    const active = jobs.filter((j) => !['succeeded', 'failed', 'canceled', 'cancelled', 'expired'].includes(j.status));
    const done = jobs.filter((j) => !active.includes(j));
    const status = (j) =>
      h(
        'td',
        {},
        h('span', { class: j.status === 'succeeded' ? 's-ok' : j.status === 'failed' ? 's-error' : 's-pending' }, j.status),
        j.stuck
          ? h(
              'span',
              {
                class: 'badge stuck',
                title: 'running, and no heartbeat renewed its lease for a whole lease: its worker died, hangs or cannot reach the store',
              },
              'stuck',
            )
          : null,
        j.cancelRequested && j.status === 'running' ? h('span', { class: 'badge muted' }, 'cancel requested') : null,
      );
    const heartbeat = (j) => {
      if (j.heartbeatAgeMs !== undefined) return `${ms(j.heartbeatAgeMs)} ago`;
      if (j.leaseExpiresAt !== undefined)
        return j.stuck ? `lease expired ${ago(j.leaseExpiresAt)}` : `lease till ${clock(j.leaseExpiresAt)}`;
      return '';
    };
    const columns = {
      'in progress': ['job', 'operation', 'service', 'status', 'progress', 'lease owner', 'heartbeat', 'attempt', 'polls', 'age', ''],
      finished: ['job', 'operation', 'service', 'status', 'polls', 'age', 'updated'],
    };
    const table = (list, label) => {
      const live = label === 'in progress';
      const tbody = h(
        'tbody',
        {},
        list.map((j) =>
          h(
            'tr',
            { tabindex: 0, class: j.stuck ? 'stuck-row' : '', onclick: () => go('flows', { flow: j.flow }) },
            h('td', { class: 'mono' }, j.jobId),
            h('td', {}, j.operation ?? ''),
            h('td', {}, j.heldBy ?? j.service),
            status(j),
            live ? h('td', { class: 'progress' }, progressText(j.progress)) : null,
            live ? h('td', { class: 'mono' }, j.leaseOwner ?? '') : null,
            live ? h('td', { class: 'mono heartbeat' }, heartbeat(j)) : null,
            live ? h('td', {}, j.attempts === undefined ? '' : `${j.attempts}/${j.maxAttempts}`) : null,
            h('td', {}, j.polls),
            h('td', { class: 'mono' }, ms((live ? Date.now() : j.updatedAt) - j.submittedAt)),
            live ? h('td', {}, cancelButton(j)) : h('td', { class: 'mono' }, ago(j.updatedAt)),
          ),
        ),
      );
      rowKeys(tbody);
      return list.length === 0
        ? h('p', { class: 'empty' }, live ? 'No job in progress.' : 'No finished job recorded.')
        : h(
            'table',
            { 'aria-label': `Jobs ${label}` },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                columns[label].map((t) => h('th', {}, t)),
              ),
            ),
            tbody,
          );
    };
    // The refresh rebuilds the rows: keep the keyboard focus on the same Cancel button.
    const focused = document.activeElement?.classList.contains('cancel-job') ? document.activeElement.getAttribute('aria-label') : null;
    fill(
      main,
      h('h2', {}, `Jobs in progress (${active.length})`),
      table(active, 'in progress'),
      h('h3', {}, `Finished (${done.length})`),
      table(done, 'finished'),
    );
    if (focused !== null) [...main.querySelectorAll('button.cancel-job')].find((b) => b.getAttribute('aria-label') === focused)?.focus();
  };
  await draw();
  const timer = setInterval(() => draw().catch(() => {}), 1000);
  cleanup = () => clearInterval(timer);
}

// Charts: completions per second by pattern, and p50/p99 latency, over the last minute.
async function chartsView(_params, current) {
  const rateCanvas = h('canvas', { width: 640, height: 220, role: 'img', 'aria-label': 'Completions per second by pattern' });
  const latencyCanvas = h('canvas', { width: 640, height: 220, role: 'img', 'aria-label': 'Latency p50 and p99 in milliseconds' });
  const deadCanvas = h('canvas', { width: 640, height: 220, role: 'img', 'aria-label': 'Dead letters per second' });
  const deadNote = h('div', { class: 'muted', id: 'dead-letter-note' });
  const totals = h('p', { class: 'muted' });
  // Queue depth: each broker's `pending` for the groups the services know, sampled every few seconds.
  const depthCanvas = h('canvas', { width: 640, height: 220, role: 'img', 'aria-label': 'Queue depth by topic and group' });
  const depthNote = h('div', { class: 'muted', id: 'queue-depth-note' });
  const depthPanel = h('section', { class: 'panel', hidden: true }, h('h3', {}, 'Queue depth (not acknowledged)'), depthCanvas, depthNote);
  fill(
    main,
    h('h2', {}, 'Last 60 seconds'),
    totals,
    h(
      'div',
      { class: 'charts' },
      h('section', { class: 'panel' }, h('h3', {}, 'Rate (per second)'), rateCanvas),
      h('section', { class: 'panel' }, h('h3', {}, 'Latency (ms): p50, p99'), latencyCanvas),
      h('section', { class: 'panel' }, h('h3', {}, 'Dead letters (per second)'), deadCanvas, deadNote),
      depthPanel,
    ),
  );
  const colors = () => {
    const css = getComputedStyle(document.documentElement);
    return Object.fromEntries(
      ['call', 'job', 'message', 'event', 'muted', 'line', 'text', 'err', 'accent'].map((k) => [k, css.getPropertyValue(`--${k}`).trim()]),
    );
  };
  const draw = async () => {
    const m = await api('metrics?seconds=60');
    if (!current()) return;
    const c = colors();
    const sum = (list) => list.reduce((a, b) => a + b, 0);
    totals.textContent = `${PATTERNS.map((p) => `${p}: ${sum(m.rate[p])}`).join(' · ')} completed in the last minute`;
    chart(
      rateCanvas,
      m.seconds,
      PATTERNS.map((p) => ({ label: p, color: c[p], values: m.rate[p] })),
      c,
    );
    chart(
      latencyCanvas,
      m.seconds,
      [
        { label: 'p50', color: c.accent, values: m.p50 },
        { label: 'p99', color: c.err, values: m.p99 },
      ],
      c,
    );
    chart(deadCanvas, m.seconds, [{ label: 'dead letters', color: c.err, values: m.deadLetters }], c);
    deadNote.textContent = `${sum(m.deadLetters)} dead-lettered in the last minute`;
    const { queues } = await api('queues').catch(() => ({ queues: [] }));
    if (!current()) return;
    depthPanel.hidden = queues.length === 0;
    if (queues.length === 0) return;
    const palette = [c.message, c.job, c.call, c.event, c.accent, c.err];
    // The last sample at or before the end of each second; nothing before the first sample.
    const valuesOf = (samples) =>
      m.seconds.map((second) => {
        let value = null;
        for (const [at, depth] of samples) if (at < second + 1000) value = depth;
        return value;
      });
    chart(
      depthCanvas,
      m.seconds,
      queues.map((q, i) => ({ label: `${q.topic}/${q.group}`, color: palette[i % palette.length], values: valuesOf(q.samples) })),
      c,
    );
    depthNote.textContent = queues
      .map((q) => `${q.service}: ${q.topic}/${q.group} ${q.samples.length > 0 ? q.samples[q.samples.length - 1][1] : '–'}`)
      .join(' · ');
  };
  await draw();
  const timer = setInterval(() => draw().catch(() => {}), 1000);
  cleanup = () => clearInterval(timer);
}

function chart(canvas, seconds, series, c) {
  const ctx = canvas.getContext('2d');
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 640;
  const hgt = canvas.clientHeight || 220;
  canvas.width = w * ratio;
  canvas.height = hgt * ratio;
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, w, hgt);
  const pad = { l: 40, r: 10, t: 18, b: 20 };
  const max = Math.max(1, ...series.flatMap((s) => s.values.filter((v) => v !== null)));
  const x = (i) => pad.l + (i / Math.max(1, seconds.length - 1)) * (w - pad.l - pad.r);
  const y = (v) => hgt - pad.b - (v / max) * (hgt - pad.t - pad.b);
  ctx.font = '11px system-ui, sans-serif';
  ctx.strokeStyle = c.line;
  ctx.fillStyle = c.muted;
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    ctx.beginPath();
    ctx.moveTo(pad.l, y(v));
    ctx.lineTo(w - pad.r, y(v));
    ctx.stroke();
    ctx.fillText(v >= 10 ? String(Math.round(v)) : v.toFixed(1), 4, y(v) + 4);
  }
  ctx.fillText('-60 s', pad.l, hgt - 4);
  ctx.fillText('now', w - pad.r - 22, hgt - 4);
  let lx = pad.l;
  for (const serie of series) {
    ctx.strokeStyle = serie.color;
    ctx.lineWidth = 1.8;
    ctx.beginPath();
    let drawing = false;
    serie.values.forEach((v, i) => {
      if (v === null) {
        drawing = false;
        return;
      }
      if (drawing) ctx.lineTo(x(i), y(v));
      else ctx.moveTo(x(i), y(v));
      drawing = true;
    });
    ctx.stroke();
    ctx.fillStyle = serie.color;
    ctx.fillRect(lx, 4, 10, 3);
    ctx.fillText(serie.label, lx + 14, 10);
    lx += 70;
  }
}

// --- wiring

document.getElementById('search').addEventListener('submit', (e) => {
  e.preventDefault();
  const q = searchBox.value.trim();
  if (q) go('flows', { q });
});
document.addEventListener('keydown', (e) => {
  if (e.key === '/' && document.activeElement !== searchBox && !['INPUT', 'SELECT', 'TEXTAREA'].includes(document.activeElement?.tagName)) {
    e.preventDefault();
    searchBox.focus();
    searchBox.select();
  } else if (e.key === 'Escape' && document.activeElement === searchBox) {
    searchBox.blur();
  } else if ((e.key === ',' || e.key === '.') && !['INPUT', 'SELECT', 'TEXTAREA'].includes(document.activeElement?.tagName)) {
    // The selected flow's replay: , previous event, . next event.
    document.querySelector(`.dvr [data-step="${e.key === ',' ? 'prev' : 'next'}"]`)?.click();
  }
});
window.addEventListener('popstate', () => render());
window.addEventListener('hashchange', () => render());
refreshInfo();
setInterval(refreshInfo, 5000);
render();
