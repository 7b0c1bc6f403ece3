// A hand-written Damon client for tests, as a README-following service
// would write one, but with a tolerant reader: it splits the byte stream
// into JSON documents itself (string-aware brace counting), so tests see
// exactly what the server wrote even when several documents share a chunk.
import net from 'node:net';
import { once } from 'node:events';
import { splitDocuments } from './jsonstream.mjs';

export class Probe {
  constructor(name) {
    this.name = name;
    this.docs = [];
    this.waiters = [];
    this.chunks = 0;
    this.closed = false;
    this.autoPong = true; // answer server PINGs (not queued) so the heartbeat leaves it alone
    this.pings = 0;
    this._buf = '';
  }

  static async connect(name, { host, port }) {
    const p = new Probe(name);
    p.sock = net.connect({ host, port });
    p.sock.setEncoding('utf8');
    p.sock.on('data', (s) => p._onData(s));
    p.sock.on('error', () => {});
    p.closedPromise = once(p.sock, 'close').then(() => {
      p.closed = true;
      p._wake();
    });
    await once(p.sock, 'connect');
    return p;
  }

  _onData(s) {
    this.chunks++;
    const { docs, rest } = splitDocuments(this._buf + s);
    this._buf = rest;
    for (const doc of docs) {
      if (doc === '{"op":3}' && this.autoPong) {
        this.pings++;
        this.sock.write('{"op":4}');
      } else {
        this.docs.push(doc);
      }
    }
    this._wake();
  }

  _wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(obj) {
    this.sock.write(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  /** Next document as a string, or throws after ms. */
  async next(ms = 3000) {
    const deadline = Date.now() + ms;
    while (this.docs.length === 0) {
      if (this.closed) throw new Error(`${this.name}: closed while waiting`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: nothing within ${ms} ms`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.docs.shift();
  }

  async nextJSON(ms) {
    return JSON.parse(await this.next(ms));
  }

  async identify(group, token) {
    this.send({ op: 1, data: { group, token } });
    const m = await this.nextJSON();
    if (m.op !== 1) throw new Error(`${this.name}: IDENTIFY answered with ${JSON.stringify(m)}`);
    this.id = m.data.id;
    return m.data;
  }

  close() {
    this.sock.destroy();
  }
}
