// The officer console: log in, then the caseload's live alerts, the map and track replay.
//
// Start-up after login: the live feed connects first; once it says `ready` the alert list is
// read (so no change falls between the list and the feed), while the caseload, its zones and
// latest positions are read in parallel. A 401 from any call returns to the login form.
// Everything shown comes from the public API with the officer's token (see api.js).

import * as api from './api.js';
import { Feed } from './feed.js';
import { AlertBoard } from './alerts.js';
import { MapView } from './map.js';
import { TrackReplay } from './track.js';
import { byId, el, ago, fullTime, shortId } from './dom.js';

// Supervisees whose zones and position are read at start-up, and parallel requests for them.
const MAX_MAPPED = 500;
const PARALLEL = 6;
// If the feed is not ready by then, the alert list is read anyway (and again once it is).
const ALERTS_FALLBACK_MS = 4000;
// A failed read of the alert list is retried after these delays (and on the feed's next `ready`).
const ALERTS_RETRY_MS = [2000, 5000, 15000, 30000, 60000];
const MAX_NAME_LOOKUPS = 200;

const session = {
  officer: null,
  supervisees: new Map(),
  lookups: new Set(),
  alertsRead: false,
  alertsFailures: 0,
  fallback: null,
  generation: 0,
};

const nameOf = (id) => session.supervisees.get(id)?.name ?? null;

const map = new MapView({ nameOf, onSelect: (id) => track.choose(id) });
const track = new TrackReplay(map);
const board = new AlertBoard({ nameOf, unknownSupervisee, showOnMap });
const feed = new Feed({
  onAlert: (frame) => board.apply(frame),
  onPosition: (frame) => {
    map.setPosition(frame.supervisee_id, frame.fix);
    if (!session.supervisees.has(frame.supervisee_id)) unknownSupervisee(frame.supervisee_id);
    caseloadSoon();
  },
  onReady: (first) => {
    if (first || !session.alertsRead) readAlerts();
  },
  onState: (state, detail) => {
    const status = byId('feed-status');
    status.setAttribute('data-state', state);
    status.textContent = { live: 'Live', connecting: 'Connecting…', offline: 'Offline' }[state] || state;
    status.title = detail || '';
  },
});

api.onUnauthenticated(() => showLogin('Your session has ended. Please sign in again.'));

byId('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector('button[type=submit]');
  const error = byId('login-error');
  error.textContent = '';
  button.disabled = true;
  try {
    const officer = await api.login(form.elements.username.value.trim(), form.elements.password.value);
    form.elements.password.value = '';
    enter(officer);
  } catch (err) {
    error.textContent = err.status === 401 ? 'Wrong username or password.' : err.message;
  } finally {
    button.disabled = false;
  }
});

byId('logout').addEventListener('click', async () => {
  await api.logout();
  showLogin('You have signed out.');
});

function showLogin(message) {
  session.generation += 1;
  clearTimeout(session.fallback);
  feed.stop();
  board.reset();
  map.reset();
  track.reset();
  session.officer = null;
  session.supervisees = new Map();
  session.lookups = new Set();
  session.alertsRead = false;
  session.alertsFailures = 0;
  byId('caseload').replaceChildren();
  byId('caseload-count').textContent = '';
  byId('console').hidden = true;
  byId('session').hidden = true;
  byId('login').hidden = false;
  byId('login-form').hidden = false;
  byId('login-error').textContent = message || '';
  byId('login-form').elements.username.focus();
}

function enter(officer) {
  session.officer = officer;
  session.generation += 1;
  byId('whoami').textContent = officer.username;
  byId('whoami').title = `${officer.name} (${officer.role})`;
  byId('login').hidden = true;
  byId('login-form').hidden = true;
  byId('console').hidden = false;
  byId('session').hidden = false;
  // Admins manage records and see no location data: no feed, alerts, zones or positions.
  const location = (officer.roles || [officer.role]).some((r) => r === 'officer' || r === 'supervisor');
  if (!location) {
    const why = 'This account sees no location data (officers and supervisors do).';
    byId('feed-status').title = why;
    byId('alerts-message').textContent = why;
    byId('map-message').textContent = why;
    return;
  }
  feed.start();
  session.fallback = setTimeout(() => {
    if (!session.alertsRead) readAlerts();
  }, ALERTS_FALLBACK_MS);
  readCaseload(session.generation);
}

/** Reads the alert list; `alertsRead` only once that succeeded, else a retry is scheduled. */
async function readAlerts() {
  const generation = session.generation;
  clearTimeout(session.fallback);
  const outcome = await board.load();
  if (generation !== session.generation || outcome === 'stale') return;
  if (outcome === 'ok') {
    session.alertsRead = true;
    clearTimeout(session.fallback);
  } else if (outcome === 'error' && !session.alertsRead) {
    const delay = ALERTS_RETRY_MS[Math.min(session.alertsFailures, ALERTS_RETRY_MS.length - 1)];
    session.alertsFailures += 1;
    clearTimeout(session.fallback);
    session.fallback = setTimeout(() => {
      if (!session.alertsRead) readAlerts();
    }, delay);
  }
}

/** The caseload, then each supervisee's zones and latest position. */
async function readCaseload(generation) {
  const mapMessage = byId('map-message');
  let list;
  try {
    list = await api.allPages('/v1/supervisees?limit=1000', 'items', 10);
  } catch (err) {
    if (generation === session.generation && err.status !== 401) {
      mapMessage.textContent = `Could not read the caseload: ${err.message}`;
    }
    return;
  }
  if (generation !== session.generation) return;
  for (const s of list.items) session.supervisees.set(s.id, s);
  track.setSupervisees(list.items);
  board.namesChanged();
  renderCaseload();
  mapMessage.textContent = 'Loading zones and positions…';
  const mapped = list.items.slice(0, MAX_MAPPED);
  const results = await api.pooled(mapped, PARALLEL, async (s) => {
    const base = `/v1/supervisees/${encodeURIComponent(s.id)}`;
    const [zones, position] = await Promise.all([api.get(`${base}/zones`), api.get(`${base}/position`)]);
    return { id: s.id, zones: zones.items || [], fix: position.fix };
  });
  if (generation !== session.generation) return;
  const failed = results.filter((r) => !r.ok);
  for (const r of results) if (r.ok) map.addZones(r.value.zones);
  for (const r of results) if (r.ok && r.value.fix) map.setPosition(r.value.id, r.value.fix);
  map.fit();
  renderCaseload();
  if (failed.length && failed.every((r) => r.error.status === 403)) {
    mapMessage.textContent = 'This account may not see location data.';
  } else if (failed.length) {
    mapMessage.textContent = `Could not read ${failed.length} supervisee(s): ${failed[0].error.message}`;
  } else if (list.items.length > MAX_MAPPED || !list.complete) {
    mapMessage.textContent = `Showing the first ${MAX_MAPPED} supervisees' zones and positions.`;
  }
}

function renderCaseload() {
  const items = [...session.supervisees.values()].sort((a, b) => a.name.localeCompare(b.name));
  byId('caseload-count').textContent = items.length ? String(items.length) : '';
  byId('caseload').replaceChildren(...items.map((s) => {
    const fix = map.positions.get(s.id);
    const where = fix ? `position ${ago(fix.ts)}` : 'no position yet';
    return el('li', {},
      el('button', { type: 'button', class: 'caseload-item', 'data-supervisee-id': s.id, title: fix ? fullTime(fix.ts) : '' },
        el('span', { class: 'caseload-name' }, s.name),
        el('span', { class: 'caseload-meta' }, s.under_supervision ? where : `${where} · no active order`)));
  }));
}

byId('caseload').addEventListener('click', (event) => {
  const item = event.target.closest('button[data-supervisee-id]');
  if (!item) return;
  const id = item.getAttribute('data-supervisee-id');
  track.choose(id);
  map.select(id);
  const fix = map.positions.get(id);
  if (fix) map.highlight(fix.lon, fix.lat, Number(fix.acc), nameOf(id) ?? shortId(id));
});

// The caseload's "position … ago" lines: every 30 s, and within 5 s of a live position.
let caseloadTimer = null;
function caseloadSoon() {
  if (caseloadTimer) return;
  caseloadTimer = setTimeout(() => {
    caseloadTimer = null;
    if (session.officer) renderCaseload();
  }, 5000);
}

setInterval(() => {
  if (session.officer) renderCaseload();
}, 30000);

/** Reads the name of a supervisee met in an alert or a position but not in the list. */
async function unknownSupervisee(id) {
  if (session.lookups.has(id) || session.lookups.size >= MAX_NAME_LOOKUPS) return;
  session.lookups.add(id);
  const generation = session.generation;
  try {
    const supervisee = await api.get(`/v1/supervisees/${encodeURIComponent(id)}`);
    if (generation !== session.generation) return;
    session.supervisees.set(supervisee.id, supervisee);
    board.namesChanged();
    if (map.positions.has(id)) map.drawPosition(id);
  } catch {
    // Out of reach (reassigned): the row keeps the short id.
  }
}

function showOnMap(alert) {
  const label = `${nameOf(alert.supervisee_id) ?? shortId(alert.supervisee_id)}: ${alert.kind}`;
  map.select(alert.supervisee_id);
  track.choose(alert.supervisee_id);
  if (alert.position) {
    map.highlight(alert.position.lon, alert.position.lat, alert.position.acc, label);
    return;
  }
  const fix = map.positions.get(alert.supervisee_id);
  if (fix) map.highlight(fix.lon, fix.lat, Number(fix.acc), `${label} (latest position)`);
  else byId('map-message').textContent = 'No position is known for this alert.';
}

async function boot() {
  if (!api.token()) {
    showLogin('');
    return;
  }
  try {
    enter(await api.get('/v1/auth/me'));
  } catch (err) {
    showLogin(err.status === 401 ? '' : `Could not reach geoward: ${err.message}`);
  }
}

boot();
