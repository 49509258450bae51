// The alert list: the caseload's alerts, most severe first then newest, kept current by the
// live feed, with acknowledge and resolve (with a note).
//
// One `li.alert` per alert shown, keyed by the API's id and reused across renders (so the
// aria-live list announces additions, not a rebuild). An alert frame replaces the alert it
// names; the initial listing never overwrites an alert the feed has already updated. At most
// MAX_ALERTS are kept: those last in display order (resolved, then least severe and oldest) go.
// Replies that arrive after reset() (a previous officer's session) are discarded.

import { get, post, ApiError } from './api.js';
import { el, byId, kindLabel, severityRank, shortTime, fullTime, shortId } from './dom.js';

const MAX_ALERTS = 2000;
const STATUS_LABELS = { open: 'Open', acknowledged: 'Acknowledged', resolved: 'Resolved' };

function compare(a, b) {
  const bySeverity = severityRank(a.severity) - severityRank(b.severity);
  if (bySeverity) return bySeverity;
  const byTime = new Date(b.opened_at) - new Date(a.opened_at);
  if (byTime) return byTime;
  return Number(b.id) - Number(a.id);
}

export class AlertBoard {
  /** handlers: nameOf(superviseeId) → name|null, unknownSupervisee(id), showOnMap(alert) */
  constructor(handlers) {
    this.handlers = handlers;
    this.list = byId('alerts');
    this.filter = byId('alert-filter');
    this.message = byId('alerts-message');
    this.count = byId('alert-count');
    this.dialog = byId('resolve-dialog');
    this.alerts = new Map();
    this.rows = new Map();
    this.signatures = new Map();
    this.fresh = new Set();
    this.fromFeed = new Set();
    this.loaded = false;
    this.loading = 0;
    this.session = 0;
    this.resolving = null;
    this.renderPending = false;
    this.list.addEventListener('click', (e) => this.onClick(e));
    this.filter.addEventListener('change', () => this.render());
    this.dialog.querySelector('[data-action=confirm-resolve]').addEventListener('click', () => this.confirmResolve());
    this.dialog.querySelector('[data-action=cancel-resolve]').addEventListener('click', () => this.dialog.close());
  }

  reset() {
    this.session += 1;
    this.alerts.clear();
    this.rows.clear();
    this.signatures.clear();
    this.fresh.clear();
    this.fromFeed.clear();
    this.loaded = false;
    this.loading = 0;
    this.resolving = null;
    this.filter.value = 'active';
    this.list.replaceChildren();
    this.message.textContent = '';
    this.count.textContent = '';
    if (this.dialog.open) this.dialog.close();
  }

  /**
   * Reads the current alerts: every open and acknowledged one, and the latest of all.
   * Resolves to 'ok', 'error' (worth retrying), 'denied' (401/403) or 'stale' (reset meanwhile).
   */
  async load() {
    const session = this.session;
    this.message.textContent = 'Loading alerts…';
    this.loading += 1;
    let outcome = 'ok';
    try {
      const [open, acknowledged, recent] = await Promise.all([
        get('/v1/alerts?status=open&limit=1000'),
        get('/v1/alerts?status=acknowledged&limit=1000'),
        get('/v1/alerts?limit=200'),
      ]);
      if (session !== this.session) return 'stale';
      for (const alert of [...open.alerts, ...acknowledged.alerts, ...recent.alerts]) {
        if (!this.fromFeed.has(alert.id)) this.alerts.set(alert.id, alert);
      }
      const more = open.next || acknowledged.next;
      this.message.textContent = more ? 'Showing the newest 1,000 alerts of each status.' : '';
    } catch (err) {
      if (session !== this.session) return 'stale';
      if (err instanceof ApiError && err.status === 401) {
        this.loading -= 1;
        return 'denied';
      }
      outcome = err.status === 403 ? 'denied' : 'error';
      this.message.textContent = err.status === 403
        ? 'This account may not see alerts (location data).'
        : `Could not load alerts: ${err.message}`;
    }
    this.loading -= 1;
    this.loaded = true;
    this.trim();
    // Feed-updated ids guard a listing in flight; with none left, only shown ones matter.
    if (!this.loading) for (const id of this.fromFeed) if (!this.alerts.has(id)) this.fromFeed.delete(id);
    this.render();
    return outcome;
  }

  /** Applies one feed frame `{type:"alert", cursor, change, alert}`. */
  apply(frame) {
    const alert = frame.alert;
    if (!alert || !alert.id) return;
    this.fromFeed.add(alert.id);
    this.alerts.set(alert.id, alert);
    if (frame.change === 'opened' && this.loaded) this.fresh.add(alert.id);
    if (alert.status !== 'open') this.fresh.delete(alert.id);
    this.trim();
    this.scheduleRender();
  }

  /** Supervisee names changed: rows show them again. */
  namesChanged() {
    this.signatures.clear();
    this.scheduleRender();
  }

  /** Keeps the first MAX_ALERTS in display order: active ones by compare(), then resolved. */
  trim() {
    if (this.alerts.size <= MAX_ALERTS) return;
    const resolved = (a) => (a.status === 'resolved' ? 1 : 0);
    const ordered = [...this.alerts.values()].sort((a, b) => resolved(a) - resolved(b) || compare(a, b));
    for (const alert of ordered.slice(MAX_ALERTS)) {
      this.alerts.delete(alert.id);
      this.fresh.delete(alert.id);
      // While a listing is in flight the id must stay, lest its older copy come back.
      if (!this.loading) this.fromFeed.delete(alert.id);
    }
  }

  scheduleRender() {
    if (this.renderPending) return;
    this.renderPending = true;
    setTimeout(() => {
      this.renderPending = false;
      this.render();
    }, 0);
  }

  render() {
    const showAll = this.filter.value === 'all';
    const shown = [...this.alerts.values()]
      .filter((a) => showAll || a.status !== 'resolved')
      .sort(compare);
    const keep = new Set(shown.map((a) => a.id));
    for (const [id, row] of this.rows) {
      if (!keep.has(id)) {
        row.remove();
        this.rows.delete(id);
        this.signatures.delete(id);
      }
    }
    let previous = null;
    for (const alert of shown) {
      const row = this.row(alert);
      const expected = previous ? previous.nextSibling : this.list.firstChild;
      if (row !== expected) this.list.insertBefore(row, expected);
      previous = row;
    }
    const open = [...this.alerts.values()].filter((a) => a.status === 'open').length;
    this.count.textContent = open ? `${open} open` : '';
    if (this.loaded && !shown.length && !this.message.textContent) {
      this.list.setAttribute('data-empty', showAll ? 'No alerts.' : 'No active alerts.');
    } else {
      this.list.removeAttribute('data-empty');
    }
  }

  /** The row of an alert, rebuilt when anything it shows changed. */
  row(alert) {
    const name = this.handlers.nameOf(alert.supervisee_id);
    const fresh = this.fresh.has(alert.id);
    const signature = JSON.stringify([alert, name, fresh]);
    let row = this.rows.get(alert.id);
    if (row && this.signatures.get(alert.id) === signature) return row;
    if (!row) {
      row = el('li', { class: 'alert' });
      this.rows.set(alert.id, row);
    }
    this.signatures.set(alert.id, signature);
    if (name === null) this.handlers.unknownSupervisee(alert.supervisee_id);
    row.className = `alert sev-${alert.severity} status-${alert.status}${fresh ? ' is-new' : ''}`;
    row.setAttribute('data-alert-id', alert.id);
    row.setAttribute('data-kind', alert.kind);
    row.setAttribute('data-severity', alert.severity);
    row.setAttribute('data-status', alert.status);
    row.setAttribute('data-supervisee-id', alert.supervisee_id);
    const badges = el('div', { class: 'alert-badges' },
      el('span', { class: `badge sev sev-${alert.severity}` }, alert.severity),
      fresh ? el('span', { class: 'badge new' }, 'New') : null,
      alert.late ? el('span', { class: 'badge late', title: 'Decided by a report uploaded late' }, 'Late') : null,
      alert.escalated_at ? el('span', { class: 'badge escalated', title: `Escalated ${fullTime(alert.escalated_at)}` }, 'Escalated') : null,
      el('span', { class: `badge status status-${alert.status}` }, STATUS_LABELS[alert.status] || alert.status));
    const title = el('div', { class: 'alert-title' },
      el('span', { class: 'alert-kind' }, kindLabel(alert.kind)),
      el('span', { class: 'alert-name' }, name ?? `Supervisee ${shortId(alert.supervisee_id)}`));
    const times = el('div', { class: 'alert-times' },
      timeItem('Event', alert.event_at),
      alert.cleared_at ? timeItem('Cleared', alert.cleared_at) : null,
      alert.acknowledged_at ? timeItem('Acknowledged', alert.acknowledged_at) : null,
      alert.resolved_at ? timeItem('Resolved', alert.resolved_at) : null);
    const actions = el('div', { class: 'alert-actions' },
      el('button', { type: 'button', class: 'button subtle', 'data-action': 'show-on-map' }, 'Show on map'),
      alert.status === 'open'
        ? el('button', { type: 'button', class: 'button primary', 'data-action': 'acknowledge' }, 'Acknowledge')
        : null,
      alert.status !== 'resolved'
        ? el('button', { type: 'button', class: 'button', 'data-action': 'resolve' }, 'Resolve…')
        : null);
    row.replaceChildren(badges, title, times, actions, el('p', { class: 'alert-error', role: 'alert' }));
    return row;
  }

  onClick(event) {
    const button = event.target.closest('button[data-action]');
    const row = event.target.closest('.alert');
    if (!row) return;
    const alert = this.alerts.get(row.getAttribute('data-alert-id'));
    if (!alert) return;
    if (!button) return;
    switch (button.getAttribute('data-action')) {
      case 'show-on-map':
        this.fresh.delete(alert.id);
        this.handlers.showOnMap(alert);
        this.scheduleRender();
        break;
      case 'acknowledge':
        this.acknowledge(alert, row, button);
        break;
      case 'resolve':
        this.openResolve(alert);
        break;
      default:
        break;
    }
  }

  async acknowledge(alert, row, button) {
    const session = this.session;
    button.disabled = true;
    row.querySelector('.alert-error').textContent = '';
    try {
      const updated = await post(`/v1/alerts/${encodeURIComponent(alert.id)}/acknowledge`, {});
      if (session === this.session) this.store(updated);
    } catch (err) {
      if (session !== this.session) return;
      button.disabled = false;
      const shownRow = this.rows.get(alert.id);
      if (shownRow) shownRow.querySelector('.alert-error').textContent = err.message;
      if (err.status === 409 || err.status === 404) this.refresh(alert.id);
    }
  }

  openResolve(alert) {
    this.resolving = alert.id;
    const name = this.handlers.nameOf(alert.supervisee_id) ?? `supervisee ${shortId(alert.supervisee_id)}`;
    byId('resolve-summary').textContent =
      `${kindLabel(alert.kind)} · ${name} · ${alert.severity} · ${shortTime(alert.event_at)}`;
    const note = this.dialog.querySelector('textarea[name=note]');
    note.value = '';
    note.required = alert.severity === 'critical';
    byId('resolve-error').textContent = '';
    this.dialog.querySelector('[data-action=confirm-resolve]').disabled = false;
    this.dialog.showModal();
    note.focus();
  }

  async confirmResolve() {
    const id = this.resolving;
    if (!id) return;
    const confirm = this.dialog.querySelector('[data-action=confirm-resolve]');
    const note = this.dialog.querySelector('textarea[name=note]').value.trim();
    const session = this.session;
    byId('resolve-error').textContent = '';
    confirm.disabled = true;
    try {
      const updated = await post(`/v1/alerts/${encodeURIComponent(id)}/resolve`, note ? { note } : {});
      if (session !== this.session) return; // reset() closed the dialog; openResolve re-enables
      this.store(updated);
      this.resolving = null;
      this.dialog.close();
    } catch (err) {
      if (session !== this.session) return;
      byId('resolve-error').textContent = err.message;
      if (err.status === 409 || err.status === 404) this.refresh(id);
    }
    confirm.disabled = false;
  }

  store(alert) {
    this.alerts.set(alert.id, alert);
    if (alert.status !== 'open') this.fresh.delete(alert.id);
    this.render();
  }

  /** Re-reads one alert after a refused step (someone else acted first). */
  async refresh(id) {
    const session = this.session;
    try {
      const { events: _events, ...alert } = await get(`/v1/alerts/${encodeURIComponent(id)}`);
      if (session === this.session) this.store(alert);
    } catch (err) {
      if (session === this.session && err.status === 404) {
        this.alerts.delete(id);
        this.render();
      }
    }
  }
}

function timeItem(label, value) {
  return el('span', { class: 'time-item' }, `${label} `,
    el('time', { datetime: value, title: fullTime(value) }, shortTime(value)));
}
