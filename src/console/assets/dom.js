// DOM and formatting helpers shared by the console's modules.
//
// Every string that came from the API reaches the page through textContent or an attribute
// set with setAttribute, never parsed as markup. `el` is the one way modules build elements.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Creates an HTML element: el('button', {type: 'button', class: 'x'}, 'text', child). */
export function el(tag, attrs = {}, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** Creates an SVG element with attributes. */
export function svg(tag, attrs = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

function fill(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Shorthand for document.getElementById. */
export function byId(id) {
  return document.getElementById(id);
}

/** Alert kinds in an officer's words. */
export const KIND_LABELS = {
  exclusion_zone_entered: 'Entered exclusion zone',
  exclusion_zone_crossed: 'Crossed exclusion zone',
  inclusion_zone_left: 'Left inclusion zone',
  curfew_violation: 'Curfew violation',
  location_jump: 'Implausible location jump',
  no_location: 'No usable location',
  strap_tamper: 'Strap tamper',
  low_battery: 'Low battery',
  lost_contact: 'Lost contact',
};

export function kindLabel(kind) {
  return KIND_LABELS[kind] || String(kind).replaceAll('_', ' ');
}

export const SEVERITY_RANK = { critical: 0, serious: 1, info: 2 };

export function severityRank(severity) {
  return SEVERITY_RANK[severity] ?? 3;
}

const pad = (n) => String(n).padStart(2, '0');

/** `14:05:09` for today, `3 Dec 14:05` otherwise; '' for nothing. */
export function shortTime(value) {
  if (!value) return '';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return '';
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  if (sameDay) return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const month = d.toLocaleString(undefined, { month: 'short' });
  return `${d.getDate()} ${month} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Full local date and time, for titles. */
export function fullTime(value) {
  if (!value) return '';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString();
}

/** "5 min ago" style; '' for nothing. */
export function ago(value, now = Date.now()) {
  if (!value) return '';
  const seconds = Math.round((now - new Date(value).getTime()) / 1000);
  if (!Number.isFinite(seconds)) return '';
  if (seconds < 45) return 'just now';
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/** The value of a datetime-local input for a Date (local time, minutes). */
export function toLocalInput(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A short form of an id, for things whose name is not known. */
export function shortId(id) {
  return String(id).slice(0, 8);
}

/** Metres with a sensible precision. */
export function metres(value) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return '?';
  const m = Number(value);
  return m >= 1000 ? `${(m / 1000).toFixed(1)} km` : `${Math.round(m)} m`;
}
