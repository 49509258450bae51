// Track replay: one supervisee's stored fixes over a chosen period (default the last two
// hours), drawn on the map, with a slider and a play button moving a cursor along them.
//
// Reads GET /v1/supervisees/{id}/track page by page (10,000 fixes a page, the API's largest)
// up to MAX_FIXES, so a long period stays bounded in the browser; the status says when the
// track was cut short. Until the officer edits the period it means "the last two hours" as of
// each load.

import { get } from './api.js';
import { byId, fullTime, metres, toLocalInput } from './dom.js';

const PAGE = 10000;
const MAX_FIXES = 20000;
const DEFAULT_PERIOD_MS = 2 * 60 * 60 * 1000;
const PLAY_TICK_MS = 60;
// A replay plays in about this many ticks, whatever the number of fixes.
const PLAY_TICKS = 400;

export class TrackReplay {
  constructor(map) {
    this.map = map;
    this.select = byId('track-supervisee');
    this.from = byId('track-from');
    this.to = byId('track-to');
    this.loadButton = byId('track-load');
    this.status = byId('track-status');
    this.slider = byId('track-slider');
    this.play = byId('track-play');
    this.fix = byId('track-fix');
    this.points = [];
    this.timer = null;
    this.generation = 0;
    this.periodEdited = false;
    for (const input of [this.from, this.to]) {
      input.addEventListener('input', () => { this.periodEdited = true; });
    }
    this.loadButton.addEventListener('click', () => this.load());
    this.slider.addEventListener('input', () => this.moveTo(Number(this.slider.value)));
    this.play.addEventListener('click', () => (this.timer ? this.pause() : this.start()));
    this.reset();
  }

  reset() {
    this.pause();
    this.generation += 1;
    this.points = [];
    this.select.replaceChildren();
    this.select.classList.remove('flash');
    this.defaultPeriod();
    this.setStatus('');
    this.slider.max = '0';
    this.slider.value = '0';
    this.slider.disabled = true;
    this.play.disabled = true;
    this.fix.textContent = '';
  }

  /** The last two hours, up to the end of this minute (the inputs count whole minutes). */
  defaultPeriod() {
    this.periodEdited = false;
    const now = new Date();
    this.to.value = toLocalInput(new Date(now.getTime() + 60 * 1000));
    this.from.value = toLocalInput(new Date(now.getTime() - DEFAULT_PERIOD_MS));
  }

  /** Fills the supervisee choice: [{id, name}], keeping the current choice. */
  setSupervisees(list) {
    const current = this.select.value;
    const options = [...list]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((s) => new Option(s.name, s.id));
    this.select.replaceChildren(...options);
    if (current && list.some((s) => s.id === current)) this.select.value = current;
  }

  /** Chooses a supervisee (a click on their position on the map). */
  choose(id) {
    if ([...this.select.options].some((o) => o.value === id)) {
      this.select.value = id;
      this.select.classList.remove('flash');
      void this.select.offsetWidth;
      this.select.classList.add('flash');
    }
  }

  setStatus(text, isError = false) {
    this.status.textContent = text;
    this.status.classList.toggle('error', isError);
  }

  async load() {
    this.pause();
    const id = this.select.value;
    if (!id) {
      this.setStatus('Choose a supervisee first.', true);
      return;
    }
    // Untouched inputs mean "the last two hours", counted from now rather than from login.
    if (!this.periodEdited) this.defaultPeriod();
    const from = new Date(this.from.value);
    const to = new Date(this.to.value);
    if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) {
      this.setStatus('Enter both a start and an end time.', true);
      return;
    }
    if (from >= to) {
      this.setStatus('The start must be before the end.', true);
      return;
    }
    const generation = ++this.generation;
    this.loadButton.disabled = true;
    this.setStatus('Loading track…');
    try {
      const { points, cut } = await this.fetchTrack(id, from, to);
      if (generation !== this.generation) return;
      this.show(points);
      const n = points.length;
      const count = `${n} ${n === 1 ? 'fix' : 'fixes'}`;
      this.setStatus(cut ? `${count} (the first ${MAX_FIXES.toLocaleString()} of the period)` : count);
    } catch (err) {
      if (generation !== this.generation) return;
      this.show([]);
      this.setStatus(`Could not load the track: ${err.message}`, true);
    } finally {
      if (generation === this.generation) this.loadButton.disabled = false;
    }
  }

  async fetchTrack(id, from, to) {
    const points = [];
    let after = null;
    while (points.length < MAX_FIXES) {
      const params = new URLSearchParams({
        from: from.toISOString(),
        to: to.toISOString(),
        limit: String(Math.min(PAGE, MAX_FIXES - points.length)),
      });
      if (after) params.set('after', after);
      const page = await get(`/v1/supervisees/${encodeURIComponent(id)}/track?${params}`);
      for (const feature of page.features || []) {
        const [lon, lat] = feature.geometry.coordinates;
        const p = feature.properties || {};
        points.push({ lon, lat, acc: p.acc, ts: p.ts, src: p.src, seq: p.seq, speed: p.speed });
      }
      if (!page.next) return { points, cut: false };
      after = page.next;
    }
    return { points, cut: true };
  }

  show(points) {
    this.points = points;
    this.map.setTrack(points);
    this.slider.max = String(Math.max(points.length - 1, 0));
    this.slider.value = '0';
    this.slider.disabled = points.length < 2;
    this.play.disabled = points.length < 2;
    this.moveTo(0);
  }

  moveTo(i) {
    const p = this.points[i];
    if (!p) {
      this.fix.textContent = '';
      return;
    }
    this.map.moveTrackCursor(i);
    const parts = [`Fix ${i + 1} of ${this.points.length}`, fullTime(p.ts), `accuracy ${metres(p.acc)}`];
    if (p.src) parts.push(p.src);
    if (Number.isFinite(p.speed)) parts.push(`${(p.speed * 3.6).toFixed(1)} km/h`);
    this.fix.textContent = parts.join(' · ');
  }

  start() {
    if (this.points.length < 2) return;
    if (Number(this.slider.value) >= this.points.length - 1) this.slider.value = '0';
    const step = Math.max(1, Math.round(this.points.length / PLAY_TICKS));
    this.play.textContent = 'Pause';
    this.play.setAttribute('aria-label', 'Pause');
    this.timer = setInterval(() => {
      const next = Math.min(Number(this.slider.value) + step, this.points.length - 1);
      this.slider.value = String(next);
      this.moveTo(next);
      if (next >= this.points.length - 1) this.pause();
    }, PLAY_TICK_MS);
  }

  pause() {
    clearInterval(this.timer);
    this.timer = null;
    this.play.textContent = 'Play';
    this.play.setAttribute('aria-label', 'Play');
  }
}
