// Plain geometry for the map: bounds, distances and SVG paths of the zone API's GeoJSON
// (Polygon, MultiPolygon and geoward's own Circle `{coordinates:[lon,lat], radius_m}`).
// Coordinates are [lon, lat] in WGS-84; `project(lon, lat)` gives map units (metres).

export const EARTH_RADIUS_M = 6371008.8;
export const RAD = Math.PI / 180;

/** Rounds map units to 0.1 m (shorter path strings, nothing visible lost). */
export function round(v) {
  return Math.round(v * 10) / 10;
}

/** Calls `visit([lon, lat])` for every position of a geometry. */
export function visitCoords(geometry, visit) {
  if (!geometry || !Array.isArray(geometry.coordinates)) return;
  const walk = (c) => {
    if (typeof c[0] === 'number') visit(c);
    else for (const inner of c) if (Array.isArray(inner)) walk(inner);
  };
  walk(geometry.coordinates);
}

/** Every [lon, lat] of a geometry; a circle gives its centre and its north and south ends. */
export function geometryLonLats(geometry) {
  const out = [];
  visitCoords(geometry, (c) => out.push(c));
  if (geometry && geometry.type === 'Circle' && out.length) {
    const r = Number(geometry.radius_m) || 0;
    const [lon, lat] = out[0];
    const dLat = r / (EARTH_RADIUS_M * RAD);
    const dLon = dLat / Math.max(Math.cos(lat * RAD), 0.01);
    out.push([lon - dLon, lat - dLat], [lon + dLon, lat + dLat]);
  }
  return out;
}

/** [minLon, minLat, maxLon, maxLat] of a list of [lon, lat]. */
export function bounds(points) {
  let [minLon, minLat, maxLon, maxLat] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const [lon, lat] of points) {
    minLon = Math.min(minLon, lon);
    maxLon = Math.max(maxLon, lon);
    minLat = Math.min(minLat, lat);
    maxLat = Math.max(maxLat, lat);
  }
  return [minLon, minLat, maxLon, maxLat];
}

/** The diagonal of the points' bounding box, in metres (equirectangular). */
export function spanM(points) {
  if (!points.length) return 0;
  const [minLon, minLat, maxLon, maxLat] = bounds(points);
  const k = Math.cos(((minLat + maxLat) / 2) * RAD);
  return EARTH_RADIUS_M * RAD * Math.hypot((maxLon - minLon) * k, maxLat - minLat);
}

/** The SVG path of a zone geometry ('' when it is not one we draw). */
export function geometryPath(geometry, project) {
  if (!geometry || !Array.isArray(geometry.coordinates)) return '';
  const ring = (coords) => `M${coords.map(([lon, lat]) => project(lon, lat).join(',')).join('L')}Z`;
  switch (geometry.type) {
    case 'Polygon':
      return geometry.coordinates.map(ring).join('');
    case 'MultiPolygon':
      return geometry.coordinates.map((p) => p.map(ring).join('')).join('');
    case 'Circle': {
      const [x, y] = project(geometry.coordinates[0], geometry.coordinates[1]);
      const r = round(Number(geometry.radius_m) || 0);
      return `M${x - r},${y}a${r},${r} 0 1,0 ${2 * r},0a${r},${r} 0 1,0 ${-2 * r},0Z`;
    }
    default:
      return '';
  }
}
