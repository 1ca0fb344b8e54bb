// brAInwav connectors dashboard: follows GET /v1/connectors/stream and shows the service map.
//
// EventSource cannot send an Authorization header, so the stream is read with fetch() and a
// stream reader and parsed here (WHATWG event-stream rules: lines, "event", "data", "id",
// "retry", comments). The API key is entered once per tab and kept in sessionStorage; it is
// only ever sent as a header to this origin, never put in a URL.

const STREAM_URL = '../../v1/connectors/stream';
const KEY_STORAGE = 'cortex-connectors.api-key';
const MAX_RETRY_MS = 30000;

const $ = (id) => document.getElementById(id);

const state = {
  controller: null,
  retryMs: 3000,
  attempt: 0,
  lastEventId: '',
  receivedAt: 0, // performance.now() when the shown snapshot arrived
  connectors: new Map(), // id -> JSON text, to tell what changed
  timer: 0,
};

// ---- API key ----

function storedKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || '';
  } catch {
    return '';
  }
}

function storeKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // Storage disabled: the key lives as long as this page.
  }
}

// ---- connection state (text and symbol; colour only repeats them) ----

const STATES = {
  idle: ['○', 'Not connected'],
  connecting: ['◌', 'Connecting…'],
  live: ['●', 'Live'],
  retrying: ['↻', 'Reconnecting'],
  unauthorized: ['✕', 'API key required'],
  error: ['✕', 'Error'],
};

function setConnection(name, detail) {
  const el = $('connection');
  const [icon, text] = STATES[name];
  el.dataset.state = name;
  el.querySelector('.icon').textContent = icon;
  el.querySelector('.text').textContent = detail ? `${text}: ${detail}` : text;
}

function announce(message) {
  // A polite live region: changes are read out without moving focus.
  const el = $('announcer');
  // Cleared first so a repeated message is announced again; a timer, not
  // requestAnimationFrame, which does not run in a background tab.
  el.textContent = '';
  setTimeout(() => {
    el.textContent = message;
  }, 50);
}

// ---- event-stream parsing ----

// Returns a function fed with decoded text chunks; calls onEvent({type, data, id}) per event.
export function eventStreamParser(onEvent, onRetry) {
  let buffer = '';
  let data = [];
  let type = '';
  let id = null;
  return (chunk) => {
    buffer += chunk;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(buffer);
      if (!match) break;
      // A lone trailing "\r" may be the first half of "\r\n": wait for more.
      if (match[0] === '\r' && match.index === buffer.length - 1) break;
      const line = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      if (line === '') {
        if (data.length > 0) onEvent({ type: type || 'message', data: data.join('\n'), id });
        data = [];
        type = '';
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'event') type = value;
      else if (field === 'id' && !value.includes('\0')) id = value;
      else if (field === 'retry' && /^\d+$/.test(value)) onRetry(Number(value));
    }
  };
}

// ---- rendering ----

function text(tag, content, className) {
  const el = document.createElement(tag);
  el.textContent = content;
  if (className) el.className = className;
  return el;
}

function list(items, render) {
  const ul = document.createElement('ul');
  ul.className = 'plain';
  for (const item of items) {
    const li = document.createElement('li');
    li.append(render(item));
    ul.append(li);
  }
  return ul;
}

const QUOTA_LABELS = { perMinute: 'per minute', perHour: 'per hour', perDay: 'per day', concurrent: 'concurrent' };

function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  const two = (n) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(r)}` : `${m}:${two(r)}`;
}

function renderTtl(cell) {
  const ttl = Number(cell.dataset.ttl);
  const left = ttl - (performance.now() - state.receivedAt) / 1000;
  const span = cell.firstChild;
  if (left <= 0) {
    span.textContent = `expired (TTL ${ttl} s)`;
    span.className = 'ttl-expired';
  } else {
    span.textContent = `${formatDuration(left)} left`;
    span.className = '';
  }
}

function tick() {
  for (const cell of document.querySelectorAll('#connectors td.ttl')) renderTtl(cell);
}

function row(connector, changed) {
  const tr = document.createElement('tr');
  tr.dataset.id = connector.id;
  if (changed) tr.className = 'changed';

  const id = document.createElement('th');
  id.scope = 'row';
  id.append(text('code', connector.id));
  // Told in words, not only by the row's background.
  if (changed) id.append(' ', text('span', 'updated', 'badge'));
  tr.append(id);
  tr.append(text('td', connector.displayName || connector.id));

  const enabled = document.createElement('td');
  enabled.className = 'enabled';
  enabled.append(connector.enabled
    ? text('span', '✓ Yes', 'enabled-yes')
    : text('span', '✕ No', 'enabled-no'));
  tr.append(enabled);

  const scopes = document.createElement('td');
  scopes.append(list(connector.scopes || [], (s) => text('code', s)));
  tr.append(scopes);

  const quotas = document.createElement('td');
  const q = connector.quotas || {};
  const keys = Object.keys(QUOTA_LABELS).filter((k) => k in q);
  if (keys.length === 0) quotas.textContent = 'none';
  else quotas.append(list(keys, (k) => document.createTextNode(`${q[k]} ${QUOTA_LABELS[k]}`)));
  tr.append(quotas);

  const ttl = document.createElement('td');
  ttl.className = 'ttl';
  ttl.dataset.ttl = String(connector.ttlSeconds);
  ttl.append(document.createElement('span'));
  renderTtl(ttl);
  tr.append(ttl);

  const tags = document.createElement('td');
  const tagList = connector.tags || [];
  if (tagList.length === 0) tags.textContent = 'none';
  else for (const t of tagList) tags.append(text('span', t, 'badge'));
  tr.append(tags);
  return tr;
}

function setTime(el, iso, fallback) {
  if (!iso) {
    el.textContent = fallback;
    el.removeAttribute('datetime');
    return;
  }
  el.dateTime = iso;
  const d = new Date(iso);
  el.textContent = Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function showSnapshot(version, event) {
  const payload = event.payload && event.payload.payload;
  if (!payload || !Array.isArray(payload.connectors)) return;
  state.receivedAt = performance.now();

  const next = new Map(payload.connectors.map((c) => [c.id, JSON.stringify(c)]));
  const first = state.connectors.size === 0;
  const added = [...next.keys()].filter((id) => !state.connectors.has(id));
  const removed = [...state.connectors.keys()].filter((id) => !next.has(id));
  const changed = [...next.keys()].filter(
    (id) => state.connectors.has(id) && state.connectors.get(id) !== next.get(id));

  const tbody = document.querySelector('#connectors tbody');
  const rows = payload.connectors.map(
    (c) => row(c, !first && (added.includes(c.id) || changed.includes(c.id))));
  if (rows.length === 0) {
    const empty = document.createElement('tr');
    empty.className = 'empty';
    const td = text('td', 'The snapshot has no connectors.');
    td.colSpan = 7;
    empty.append(td);
    rows.push(empty);
  }
  tbody.replaceChildren(...rows);
  state.connectors = next;

  $('version').textContent = version || '—';
  setTime($('changed'), event.timestamp, '—');
  setTime($('generated'), payload.generatedAt, '—');
  // The signed count (metadata.count, as the Python service served it); the array's length for
  // a payload recorded by a server before 0.2, which put count at the top level.
  const count = payload.metadata && Number.isInteger(payload.metadata.count)
    ? payload.metadata.count : payload.connectors.length;
  $('count').textContent = String(count);

  if (first) {
    announce(`Snapshot ${version}: ${payload.connectors.length} connectors.`);
  } else {
    const parts = [];
    if (added.length) parts.push(`added ${added.join(', ')}`);
    if (removed.length) parts.push(`removed ${removed.join(', ')}`);
    if (changed.length) parts.push(`changed ${changed.join(', ')}`);
    announce(`Snapshot updated to version ${version}${parts.length ? `: ${parts.join('; ')}` : ''}.`);
  }
}

// ---- the stream ----

function scheduleRetry(reason) {
  const delay = Math.min(MAX_RETRY_MS, state.retryMs * 2 ** Math.min(state.attempt, 4));
  state.attempt += 1;
  setConnection('retrying', `${reason}; next try in ${Math.round(delay / 1000)} s`);
  clearTimeout(state.timer);
  state.timer = setTimeout(connect, delay);
}

async function connect() {
  clearTimeout(state.timer);
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  const key = storedKey();
  const headers = { Accept: 'text/event-stream' };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (state.lastEventId) headers['Last-Event-ID'] = state.lastEventId;
  setConnection('connecting');
  let response;
  try {
    response = await fetch(STREAM_URL, { headers, cache: 'no-store', signal: controller.signal });
  } catch (e) {
    if (controller.signal.aborted) return;
    scheduleRetry('network error');
    return;
  }
  if (response.status === 401 || response.status === 403) {
    setConnection('unauthorized', response.status === 403 ? 'the key was refused' : 'enter it above');
    announce(response.status === 403 ? 'The API key was refused.' : 'An API key is required.');
    $('api-key').focus();
    return;
  }
  if (!response.ok || !response.body) {
    scheduleRetry(`HTTP ${response.status}`);
    return;
  }
  setConnection('live');
  state.attempt = 0;
  const decoder = new TextDecoder();
  const feed = eventStreamParser(
    (ev) => {
      if (ev.id !== null) state.lastEventId = ev.id;
      if (ev.type !== 'status') return;
      try {
        showSnapshot(ev.id, JSON.parse(ev.data));
      } catch {
        // A malformed event is skipped; the next one replaces the view.
      }
    },
    (ms) => {
      state.retryMs = ms;
    });
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      feed(decoder.decode(value, { stream: true }));
    }
  } catch {
    if (controller.signal.aborted) return;
  }
  if (controller.signal.aborted) return;
  scheduleRetry('stream ended');
}

// ---- wiring ----

function start() {
  const input = $('api-key');
  input.value = storedKey();
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    storeKey(input.value.trim());
    state.lastEventId = '';
    state.attempt = 0;
    connect();
  });
  $('forget').addEventListener('click', () => {
    storeKey('');
    input.value = '';
    if (state.controller) state.controller.abort();
    clearTimeout(state.timer);
    setConnection('idle');
    announce('API key forgotten; the stream is closed.');
    input.focus();
  });
  setInterval(tick, 1000);
  // Without a stored key the first try shows whether the server needs one (NO_AUTH=true does not).
  connect();
}

start();
