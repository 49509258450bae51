// The map: an SVG drawing of the caseload's zones, latest positions, a replayed track and
// highlights, with no tiles and no network.
//
// Projection: equirectangular around an origin (the centre of the data when the map was last
// fitted), x scaled by cos(origin latitude), in metres; good to a fraction of a percent over a
// county. The viewBox is in those metres and keeps the element's aspect ratio, so one screen
// pixel is `unitsPerPx()` metres; markers and labels are resized with it on every zoom.
// Zones are drawn once per id (shared zones once), from the API's WGS-84 GeoJSON.

import { svg, byId, fullTime, metres, ago } from './dom.js';
import { EARTH_RADIUS_M, RAD, round, bounds, spanM, geometryLonLats, geometryPath } from './geo.js';

const MIN_SPAN_M = 400;
const STALE_MS = 15 * 60 * 1000;
// Always-on inclusion zones wider than this are drawn as a jurisdiction outline.
const JURISDICTION_SPAN_M = 3000;

export class MapView {
  /** handlers: onSelect(superviseeId), nameOf(superviseeId) → name|null */
  constructor(handlers) {
    this.handlers = handlers;
    this.svg = byId('map');
    this.message = byId('map-message');
    this.scale = byId('map-scale');
    this.layers = {};
    for (const name of ['zones', 'track', 'positions', 'highlight']) {
      this.layers[name] = this.svg.appendChild(svg('g', { class: `layer-${name}` }));
    }
    this.reset();
    this.bindInput();
    new ResizeObserver(() => this.resized()).observe(this.svg);
  }

  reset() {
    this.zones = new Map();
    this.positions = new Map();
    this.track = [];
    this.trackIndex = 0;
    this.origin = null;
    this.view = null;
    this.selected = null;
    for (const layer of Object.values(this.layers)) layer.replaceChildren();
    this.updateMessage();
  }

  // --- data -------------------------------------------------------------------------------

  addZones(zones) {
    for (const zone of zones) this.zones.set(zone.id, zone);
  }

  setPosition(superviseeId, fix) {
    if (!fix || !Number.isFinite(fix.lat) || !Number.isFinite(fix.lon)) return;
    const known = this.positions.get(superviseeId);
    if (known && known.ts && fix.ts && new Date(known.ts) > new Date(fix.ts)) return;
    this.positions.set(superviseeId, fix);
    if (!this.origin) this.fit();
    else this.drawPosition(superviseeId);
    this.updateMessage();
  }

  select(superviseeId) {
    this.selected = superviseeId;
    for (const g of this.layers.positions.children) {
      g.classList.toggle('selected', g.getAttribute('data-supervisee-id') === superviseeId);
    }
  }

  // --- projection and view ----------------------------------------------------------------

  project(lon, lat) {
    const o = this.origin;
    return [
      round(EARTH_RADIUS_M * (lon - o.lon) * RAD * o.k),
      round(-EARTH_RADIUS_M * (lat - o.lat) * RAD),
    ];
  }

  /** Every lon/lat the map holds (zones, positions, track), for fitting. */
  lonLats(what = 'all') {
    const out = [];
    if (what === 'all') {
      for (const zone of this.zones.values()) out.push(...geometryLonLats(zone.geometry));
      for (const fix of this.positions.values()) out.push([fix.lon, fix.lat]);
    }
    for (const p of this.track) out.push([p.lon, p.lat]);
    return out;
  }

  /** Re-centres the projection on the data and shows all of it (or `what`: 'track'). */
  fit(what = 'all') {
    let points = this.lonLats(what);
    if (!points.length) points = this.lonLats('all');
    if (!points.length) {
      this.updateMessage();
      return;
    }
    const [minLon, minLat, maxLon, maxLat] = bounds(points);
    if (what === 'all' || !this.origin) {
      const lat = (minLat + maxLat) / 2;
      this.origin = { lat, lon: (minLon + maxLon) / 2, k: Math.cos(lat * RAD) };
      this.redraw();
    }
    const [x0, y1] = this.project(minLon, minLat);
    const [x1, y0] = this.project(maxLon, maxLat);
    const pad = 0.08;
    const w = Math.max(x1 - x0, MIN_SPAN_M) * (1 + 2 * pad);
    const h = Math.max(y1 - y0, MIN_SPAN_M) * (1 + 2 * pad);
    this.setView((x0 + x1) / 2, (y0 + y1) / 2, w, h);
  }

  /** Shows the rectangle centred on (cx, cy) at least w × h, in the element's aspect. */
  setView(cx, cy, w, h) {
    const aspect = (this.svg.clientWidth || 800) / (this.svg.clientHeight || 500);
    if (w / h < aspect) w = h * aspect;
    else h = w / aspect;
    this.view = { x: cx - w / 2, y: cy - h / 2, w, h };
    this.svg.setAttribute('viewBox', `${this.view.x} ${this.view.y} ${w} ${h}`);
    this.resizeMarkers();
  }

  unitsPerPx() {
    return this.view ? this.view.w / (this.svg.clientWidth || 800) : 1;
  }

  zoom(factor, px, py) {
    if (!this.view) return;
    const v = this.view;
    const fx = px === undefined ? 0.5 : px / (this.svg.clientWidth || 1);
    const fy = py === undefined ? 0.5 : py / (this.svg.clientHeight || 1);
    const w = Math.min(Math.max(v.w * factor, 50), 4e6);
    const h = v.h * (w / v.w);
    const ax = v.x + fx * v.w;
    const ay = v.y + fy * v.h;
    this.setView(ax - fx * w + w / 2, ay - fy * h + h / 2, w, h);
  }

  /** Centres on a point, zoomed in to about `span` metres unless already closer. */
  centreOn(lon, lat, span) {
    if (!this.origin) return;
    const [x, y] = this.project(lon, lat);
    const w = this.view ? Math.min(this.view.w, span) : span;
    this.setView(x, y, w, w);
  }

  resized() {
    if (this.view) {
      const v = this.view;
      this.setView(v.x + v.w / 2, v.y + v.h / 2, v.w, v.h);
    } else if (this.origin) {
      this.fit();
    }
  }

  // --- drawing ----------------------------------------------------------------------------

  redraw() {
    this.layers.zones.replaceChildren();
    const styles = new Map([...this.zones.values()].map((z) => [z.id, this.zoneStyle(z)]));
    const zones = [...this.zones.values()]
      .sort((a, b) => zoneOrder(styles.get(a.id)) - zoneOrder(styles.get(b.id)));
    for (const zone of zones) {
      const d = this.zonePath(zone.geometry);
      if (!d) continue;
      const style = styles.get(zone.id);
      const path = svg('path', {
        class: `zone zone-${style}`, d, 'fill-rule': 'evenodd',
        'data-zone-id': zone.id, 'data-zone-kind': zone.kind,
      }, svg('title', {}, `${zone.name} (${zone.kind}${zone.shared ? ', shared' : ''})`));
      this.layers.zones.append(path);
    }
    this.layers.positions.replaceChildren();
    for (const id of this.positions.keys()) this.drawPosition(id);
    this.drawTrack();
    this.updateMessage();
  }

  zoneStyle(zone) {
    if (zone.kind === 'exclusion') return 'exclusion';
    const always = !Array.isArray(zone.schedule) || zone.schedule.length === 0;
    if (always && spanM(geometryLonLats(zone.geometry)) > JURISDICTION_SPAN_M) return 'jurisdiction';
    return 'inclusion';
  }

  zonePath(geometry) {
    return this.origin ? geometryPath(geometry, (lon, lat) => this.project(lon, lat)) : '';
  }

  drawPosition(id) {
    if (!this.origin) return;
    const fix = this.positions.get(id);
    const [x, y] = this.project(fix.lon, fix.lat);
    let g = this.layers.positions.querySelector(`g[data-supervisee-id="${CSS.escape(id)}"]`);
    if (!g) {
      g = svg('g', { class: 'pos', 'data-supervisee-id': id },
        svg('circle', { class: 'accuracy' }),
        svg('circle', { class: 'position', 'data-supervisee-id': id, tabindex: 0, role: 'button' }),
        svg('text', { class: 'pos-label' }),
        svg('title'));
      this.layers.positions.append(g);
    }
    const [accuracy, dot, label, title] = g.children;
    const acc = Number(fix.acc);
    accuracy.setAttribute('cx', x);
    accuracy.setAttribute('cy', y);
    accuracy.setAttribute('r', Number.isFinite(acc) && acc > 0 ? round(acc) : 0);
    dot.setAttribute('cx', x);
    dot.setAttribute('cy', y);
    label.setAttribute('x', x);
    label.setAttribute('y', y);
    const name = this.handlers.nameOf(id) ?? 'Unknown supervisee';
    label.textContent = name;
    dot.setAttribute('aria-label', `${name}: latest position`);
    title.textContent = `${name}\n${fullTime(fix.ts)} (${ago(fix.ts)})\naccuracy ${metres(acc)}`;
    g.classList.toggle('stale', fix.ts && Date.now() - new Date(fix.ts) > STALE_MS);
    g.classList.toggle('selected', this.selected === id);
    this.resizeMarkers(g);
  }

  // --- track replay -----------------------------------------------------------------------

  /** Draws a track (`[{lon, lat, acc, ts}]`, device-time order) and shows all of it. */
  setTrack(points) {
    this.track = points;
    this.trackIndex = 0;
    this.layers.track.replaceChildren();
    this.clearHighlight();
    if (points.length) this.fit('track');
    this.drawTrack();
    this.updateMessage();
  }

  drawTrack() {
    this.layers.track.replaceChildren();
    if (!this.origin || !this.track.length) return;
    const d = `M${this.track.map((p) => this.project(p.lon, p.lat).join(',')).join('L')}`;
    this.layers.track.append(
      svg('path', { class: 'track', d }),
      svg('circle', { class: 'track-accuracy' }),
      svg('circle', { class: 'track-cursor' }));
    this.moveTrackCursor(this.trackIndex);
  }

  /** Puts the replay cursor on fix `i` of the track. */
  moveTrackCursor(i) {
    const p = this.track[i];
    const [accuracy, cursor] = this.layers.track.querySelectorAll('circle');
    if (!p || !cursor) return;
    this.trackIndex = i;
    const [x, y] = this.project(p.lon, p.lat);
    for (const c of [accuracy, cursor]) {
      c.setAttribute('cx', x);
      c.setAttribute('cy', y);
    }
    const acc = Number(p.acc);
    accuracy.setAttribute('r', Number.isFinite(acc) && acc > 0 ? round(acc) : 0);
    this.resizeMarkers(this.layers.track);
  }

  // --- highlights ---------------------------------------------------------------------------

  /** A ring at a point (an alert's position), centred in view. */
  highlight(lon, lat, acc, label) {
    if (!this.origin) {
      this.origin = { lat, lon, k: Math.cos(lat * RAD) };
      this.redraw();
    }
    const [x, y] = this.project(lon, lat);
    const r = Number.isFinite(acc) && acc > 0 ? round(acc) : 0;
    this.layers.highlight.replaceChildren(
      svg('circle', { class: 'highlight-accuracy', cx: x, cy: y, r }),
      svg('circle', { class: 'highlight', cx: x, cy: y }, svg('title', {}, label)));
    this.centreOn(lon, lat, Math.max(MIN_SPAN_M * 2, r * 8));
    this.resizeMarkers();
  }

  clearHighlight() {
    this.layers.highlight.replaceChildren();
  }

  /** Keeps markers, labels and the scale bar the same size on screen at every zoom. */
  resizeMarkers(scope = this.svg) {
    const u = this.unitsPerPx();
    for (const c of scope.querySelectorAll('circle.position')) c.setAttribute('r', 6 * u);
    for (const c of scope.querySelectorAll('circle.highlight')) c.setAttribute('r', 16 * u);
    for (const c of scope.querySelectorAll('circle.track-cursor')) c.setAttribute('r', 7 * u);
    for (const t of scope.querySelectorAll('text.pos-label')) {
      t.setAttribute('font-size', 12 * u);
      t.setAttribute('dx', 9 * u);
      t.setAttribute('dy', 4 * u);
      t.setAttribute('stroke-width', 3 * u);
    }
    if (scope === this.svg) this.updateScale(u);
  }

  updateScale(u) {
    if (!this.view) {
      this.scale.textContent = '';
      return;
    }
    const target = 120 * u;
    const step = 10 ** Math.floor(Math.log10(target));
    const nice = [5, 2, 1].map((m) => m * step).find((m) => m <= target) || step;
    this.scale.style.width = `${Math.round(nice / u)}px`;
    this.scale.textContent = metres(nice);
  }

  updateMessage() {
    const empty = !this.zones.size && !this.positions.size && !this.track.length;
    this.message.textContent = empty ? 'No zones or positions to show yet.' : '';
  }

  // --- input ------------------------------------------------------------------------------

  bindInput() {
    this.svg.addEventListener('wheel', (e) => {
      e.preventDefault();
      const rect = this.svg.getBoundingClientRect();
      this.zoom(e.deltaY > 0 ? 1.25 : 0.8, e.clientX - rect.left, e.clientY - rect.top);
    }, { passive: false });
    let drag = null;
    this.svg.addEventListener('pointerdown', (e) => {
      if (!this.view || e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY, view: { ...this.view }, moved: false, id: e.pointerId };
    });
    this.svg.addEventListener('pointermove', (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      if (!drag.moved) this.svg.setPointerCapture(e.pointerId);
      drag.moved = true;
      const u = drag.view.w / (this.svg.clientWidth || 1);
      const v = drag.view;
      this.setView(v.x + v.w / 2 - dx * u, v.y + v.h / 2 - dy * u, v.w, v.h);
    });
    let draggedAt = -Infinity;
    const end = (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      if (drag.moved) draggedAt = performance.now();
      drag = null;
    };
    this.svg.addEventListener('pointerup', end);
    this.svg.addEventListener('pointercancel', end);
    this.svg.addEventListener('click', (e) => {
      // The click that ends a drag is not a click on what lies under the pointer.
      if (performance.now() - draggedAt < 300) return;
      this.activate(e.target);
    });
    this.svg.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        if (this.activate(e.target)) e.preventDefault();
      }
    });
    byId('map-zoom-in').addEventListener('click', () => this.zoom(0.6));
    byId('map-zoom-out').addEventListener('click', () => this.zoom(1 / 0.6));
    byId('map-fit').addEventListener('click', () => this.fit());
  }

  activate(target) {
    const dot = target.closest && target.closest('circle.position');
    if (!dot) return false;
    const id = dot.getAttribute('data-supervisee-id');
    this.select(id);
    this.handlers.onSelect(id);
    return true;
  }
}

function zoneOrder(style) {
  return { jurisdiction: 0, inclusion: 1, exclusion: 2 }[style] ?? 3;
}
