// The public API, as the console uses it: JSON over HTTP with the officer's bearer token.
//
// The token lives in sessionStorage (gone when the tab closes). Every failure is an ApiError
// carrying the HTTP status and the API's `{"error","message"}`; a 401 on any call made with a
// token also tells the app (onUnauthenticated) so it can return to the login form.

const TOKEN_KEY = 'geoward.token';
const TIMEOUT_MS = 20000;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

let unauthenticated = () => {};

/** Registers what to do when the session is no longer valid. */
export function onUnauthenticated(handler) {
  unauthenticated = handler;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** One call; resolves to the parsed JSON body (null for 204), rejects with ApiError. */
export async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers, cache: 'no-store', signal: AbortSignal.timeout(TIMEOUT_MS) };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    const why = err && err.name === 'TimeoutError' ? 'the server did not answer in time' : 'the server is unreachable';
    throw new ApiError(0, 'network', `Cannot reach geoward: ${why}.`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const code = data && typeof data.error === 'string' ? data.error : `http_${response.status}`;
    const message = data && typeof data.message === 'string' ? data.message : `HTTP ${response.status}`;
    const error = new ApiError(response.status, code, message);
    if (response.status === 401 && bearer && bearer === token()) {
      setToken(null);
      unauthenticated(error);
    }
    throw error;
  }
  return data;
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body);

/** Logs in; keeps the token; resolves to the officer. */
export async function login(username, password) {
  setToken(null);
  const reply = await post('/v1/auth/login', { username, password });
  setToken(reply.token);
  return reply.officer;
}

/** Logs out (best effort: the token is forgotten either way). */
export async function logout() {
  const had = token();
  if (!had) return;
  try {
    await post('/v1/auth/logout');
  } catch {
    // The session may already be gone; nothing more to do.
  } finally {
    setToken(null);
  }
}

/** Every page of a paginated listing (`items` + `next`), at most `maxPages` pages. */
export async function allPages(path, key = 'items', maxPages = 20) {
  const items = [];
  let after = null;
  for (let page = 0; page < maxPages; page += 1) {
    const sep = path.includes('?') ? '&' : '?';
    const url = after ? `${path}${sep}after=${encodeURIComponent(after)}` : path;
    const reply = await get(url);
    items.push(...(reply[key] || []));
    if (!reply.next) return { items, complete: true };
    after = reply.next;
  }
  return { items, complete: false };
}

/** Runs `work(item)` over items with at most `limit` at a time; results in order. */
export async function pooled(items, limit, work) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next;
      next += 1;
      try {
        results[i] = { ok: true, value: await work(items[i]) };
      } catch (error) {
        results[i] = { ok: false, error };
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
