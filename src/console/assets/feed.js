// The officers' live feed (GET /v1/officer/ws, docs/alerts.md), kept connected.
//
// Each connection is opened with a fresh single-use ticket (POST /v1/auth/ws-ticket); after a
// disconnect it reconnects with backoff and `?after=<last cursor received>`, so the server
// replays every change missed meanwhile: nothing is lost and nothing applied twice matters
// (applying an alert frame is idempotent). State: connecting → live (after `ready`) → offline.

import { post, ApiError } from './api.js';

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000, 30000];

export class Feed {
  /**
   * handlers: onAlert(frame), onPosition(frame), onReady(firstTime), onState(state, detail)
   */
  constructor(handlers) {
    this.handlers = handlers;
    this.cursor = null;
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
    this.readyOnce = false;
    // Bumped by stop() and by each connect(): a connect() that finds it changed after an await
    // was superseded and gives up, so at most one socket is ever opened.
    this.generation = 0;
    this.connecting = false;
    this.onOnline = () => {
      if (!this.stopped && !this.socket && !this.connecting) this.reconnectSoon(0);
    };
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener('online', this.onOnline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.generation += 1;
    this.connecting = false;
    window.removeEventListener('online', this.onOnline);
    clearTimeout(this.timer);
    this.timer = null;
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      closeStale(socket, 'logged out');
    }
    this.cursor = null;
    this.readyOnce = false;
    this.setState('offline', 'Not connected');
  }

  setState(state, detail) {
    if (this.handlers.onState) this.handlers.onState(state, detail);
  }

  async connect() {
    this.timer = null;
    if (this.stopped || this.socket) return;
    const generation = ++this.generation;
    this.connecting = true;
    this.setState('connecting', this.attempt ? `Reconnecting (attempt ${this.attempt + 1})` : 'Connecting');
    let ticket;
    try {
      ticket = (await post('/v1/auth/ws-ticket')).ticket;
    } catch (err) {
      if (this.stopped || generation !== this.generation) return;
      this.connecting = false;
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        this.stopped = true;
        this.setState('offline', err.status === 403 ? 'This account has no access to location data' : 'Signed out');
        return;
      }
      this.scheduleReconnect();
      return;
    }
    if (this.stopped || generation !== this.generation) return;
    this.connecting = false;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const params = new URLSearchParams({ ticket });
    if (this.cursor !== null) params.set('after', this.cursor);
    let socket;
    try {
      socket = new WebSocket(`${scheme}://${location.host}/v1/officer/ws?${params}`);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onmessage = (event) => {
      // A socket that is no longer ours (stopped, or replaced) delivers nothing.
      if (this.socket !== socket) closeStale(socket, 'superseded');
      else this.receive(event.data);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      this.setState('offline', closeReason(event));
      // 4001: this connection fell behind; resume at once from the cursor.
      if (event.code === 4001) this.reconnectSoon(200);
      else this.scheduleReconnect();
    };
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    switch (frame.type) {
      case 'alert':
        if (frame.cursor) this.cursor = frame.cursor;
        this.handlers.onAlert(frame);
        break;
      case 'position':
        this.handlers.onPosition(frame);
        break;
      case 'ready': {
        if (frame.cursor) this.cursor = frame.cursor;
        this.attempt = 0;
        const first = !this.readyOnce;
        this.readyOnce = true;
        this.send({ type: 'subscribe', positions: true });
        this.setState('live', 'Live');
        this.handlers.onReady(first);
        break;
      }
      default:
        // `subscribed` needs nothing; `error` answers a bad frame of ours and changes nothing.
        break;
    }
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
    }
  }

  scheduleReconnect() {
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    // Jitter spreads the reconnects of many consoles after a restart.
    this.reconnectSoon(base / 2 + Math.random() * base / 2);
  }

  reconnectSoon(delayMs) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delayMs);
  }
}

function closeStale(socket, reason) {
  socket.onmessage = null;
  socket.onclose = null;
  socket.close(1000, reason);
}

function closeReason(event) {
  switch (event.code) {
    case 1001:
      return 'Server restarting; reconnecting';
    case 4001:
      return 'Catching up';
    case 1008:
      return 'Feed refused our messages; reconnecting';
    default:
      return 'Connection lost; reconnecting';
  }
}
