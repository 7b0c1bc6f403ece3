// A Damon master-socket client that behaves like the reference client
// library (Damon-Org/SocketClient), written from the behaviour described in
// shared/specs/damon.md §7 and §9, so that Switchboard can be checked
// against an "unmodified" client:
//
//   - it is a net.Socket; on 'ready' it sends IDENTIFY {group, token};
//   - every 'data' chunk is JSON.parse'd on its own (chunks over 32 KiB are
//     refused with MESSAGE_TOO_BIG), parse errors are swallowed;
//   - op 0 EVENT is emitted as 'event' and under its event name; op 1 stores
//     the id; op 2 makes it send {"op":2,"data":"NO_REASON"} and destroy the
//     socket; op 3 is answered with {"op":4}; op 4 resets its timer; op 5
//     (REPLY) is unknown to it and ignored;
//   - its own liveness timer (60 s, hard-coded in the library) sends a PING
//     when it fires and PING_TIMEOUT when it fires again; the flag it sets
//     is never cleared by a PONG (the library's quirk, kept on purpose);
//   - on 'close' it reconnects after 15 s, forever, and re-identifies (and
//     gets a new id).
//
// Only reconnectDelay and selfTimeout are configurable here (defaults are
// the library's), plus a test switch, answerPings, to make it misbehave.
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { splitDocuments } from './jsonstream.mjs';

export const OPCodes = Object.freeze({ EVENT: 0, IDENTIFY: 1, DISCONNECT: 2, PING: 3, PONG: 4, REPLY: 5 });

const MAX_BYTES = 1024 * 32;

export class SocketClient extends net.Socket {
  constructor({ host, port, group, token, reconnectDelay = 15000, selfTimeout = 3e4 * 2 }) {
    super();
    this.credentials = { host, port, group, token };
    this.reconnectDelay = reconnectDelay;
    this.selfTimeout = selfTimeout;
    this.answerPings = true; // test switch: false makes it ignore server PINGs
    this.id = null;
    this._ready = false;
    this._disconnect = false;
    this._timeout = null;
    this._reconnectTimer = null;
    this._stopped = false;
    this.stats = { connects: 0, closes: 0, pings: 0, identified: 0, parseErrors: 0 };

    this.on('ready', () => {
      this._ready = true;
      this.stats.connects++;
      this.sendPayload(OPCodes.IDENTIFY, { group: this.credentials.group, token: this.credentials.token });
    });
    this.on('data', (chunk) => this.onData(chunk));
    this.on('error', () => {}); // 'close' follows
    this.on('close', () => {
      this._ready = false;
      this.stats.closes++;
      clearTimeout(this._timeout);
      if (!this._stopped) this._reconnectTimer = setTimeout(() => this.connect(), this.reconnectDelay);
    });
  }

  connect() {
    return super.connect({ host: this.credentials.host, port: this.credentials.port });
  }

  /** Stop for good (tests): no more reconnects. */
  stop() {
    this._stopped = true;
    clearTimeout(this._reconnectTimer);
    clearTimeout(this._timeout);
    this.destroy();
  }

  onData(chunk) {
    if (chunk.length > MAX_BYTES) {
      this.disconnect('MESSAGE_TOO_BIG');
      return;
    }
    let message;
    try {
      message = JSON.parse(chunk.toString());
    } catch {
      // Two documents in one chunk end up here. The reference drops the
      // chunk; the count keeps that visible to tests that assert on it,
      // but the documents are still handled, so that a routing test does
      // not hang when the kernel coalesces two writes under load.
      this.stats.parseErrors++;
      for (const doc of splitDocuments(chunk.toString()).docs) {
        try { this.handle(JSON.parse(doc)); } catch { /* not JSON after all */ }
      }
      return;
    }
    this.handle(message);
  }

  handle(m) {
    switch (m.op) {
      case OPCodes.EVENT:
        this.emit('event', m);
        if (typeof m.event === 'string') this.emit(m.event, m);
        break;
      case OPCodes.IDENTIFY:
        this.id = m.data.id;
        this._ping = m.data.ping * 2; // stored, unused (as in the library)
        this.stats.identified++;
        this.resetTimeout();
        this.emit('identify', m.data);
        break;
      case OPCodes.DISCONNECT:
        this.emit('server_disconnect', m.data);
        this.disconnect();
        break;
      case OPCodes.PING:
        this.stats.pings++;
        if (!this.answerPings) break;
        this.sendPayload(OPCodes.PONG);
        this.resetTimeout();
        break;
      case OPCodes.PONG:
        this.resetTimeout();
        break;
      default:
        break; // REPLY (5) included
    }
  }

  resetTimeout() {
    clearTimeout(this._timeout);
    this._timeout = setTimeout(() => {
      if (this._disconnect) {
        this._disconnect = false;
        this.disconnect('PING_TIMEOUT');
        return;
      }
      this.sendPayload(OPCodes.PING);
      this._disconnect = true; // never cleared by a PONG
      this.resetTimeout();
    }, this.selfTimeout);
  }

  disconnect(reason = 'NO_REASON') {
    if (this._ready) this.sendPayload(OPCodes.DISCONNECT, reason);
    this.destroy();
  }

  send(m) {
    if (!this._ready) return false;
    if (m.op === OPCodes.EVENT) m.id = randomUUID();
    return this.write(JSON.stringify(m));
  }

  sendPayload(op, data, event, intent) {
    return this.send({ op, event, data, intent });
  }
}
