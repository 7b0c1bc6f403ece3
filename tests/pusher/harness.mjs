// Black-box harness for Switchboard's Pusher protocol end-to-end tests.
//
// It builds the server binary (once per test process, or uses
// $SWITCHBOARD_BIN, which run.sh sets after building it once for all files),
// starts servers with per-test YAML configs on free loopback ports, waits for
// /readyz, and stops them with SIGTERM. It also provides a raw `ws` client
// that records every frame, factories for pusher-js and the `pusher` server
// SDK, a webhook receiver, and a signer for raw REST requests.
//
// Nothing here looks inside the server: everything goes through its public
// WebSocket, HTTP API and webhook surfaces.

import { spawn, execFile } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import WebSocket from 'ws';
import { freePort } from '../ports.mjs';

const require = createRequire(import.meta.url);
export const PusherJS = require('pusher-js');
export const PusherServer = require('pusher');
PusherJS.logToConsole = !!process.env.PUSHER_JS_LOG;

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Upper bounds on waits (never lower bounds, never the quiet windows used
 * to show that something did NOT arrive) are multiplied by this, so a busy
 * 2-core machine does not turn slowness into failures. PUSHER_TIMEOUT_SCALE.
 */
export const SCALE = Number(process.env.PUSHER_TIMEOUT_SCALE || 2);

/** Fixed 32-byte master key for private-encrypted channels (test only). */
export const ENCRYPTION_MASTER_KEY_B64 = Buffer.from('switchboard-e2e-master-key-32by!').toString('base64');

/** The default app, as the brief and default.yaml define it. */
export const DEFAULT_APP = Object.freeze({ id: 'app-id', key: 'app-key', secret: 'app-secret' });

/** Reject if p does not settle within ms. */
export function withTimeout(p, ms, label = 'operation') {
  let t;
  ms *= SCALE;
  return Promise.race([
    p,
    new Promise((_, rej) => {
      t = setTimeout(() => rej(new Error(`timeout after ${ms} ms waiting for ${label}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

/** Poll fn until it returns a truthy value. */
export async function eventually(fn, { timeout = 5000, interval = 25, label = 'condition' } = {}) {
  timeout *= SCALE;
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timeout after ${timeout} ms waiting for ${label} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(interval);
  }
}

// ---------------------------------------------------------------- binary

let binaryPromise;

/** Path of the server binary: $SWITCHBOARD_BIN, or a fresh `go build`. */
export function serverBinary() {
  if (process.env.SWITCHBOARD_BIN) return Promise.resolve(process.env.SWITCHBOARD_BIN);
  if (!binaryPromise) {
    binaryPromise = new Promise((resolve, reject) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-pusher-bin-'));
      const out = path.join(dir, 'switchboard');
      execFile('go', ['build', '-o', out, './cmd/switchboard'], { cwd: REPO_ROOT, maxBuffer: 16 << 20 }, (err, _stdout, stderr) => {
        if (err) reject(new Error(`go build failed:\n${stderr}`));
        else resolve(out);
      });
    });
  }
  return binaryPromise;
}

// The test files import freePort from here with the rest of the harness.
export { freePort };

// ---------------------------------------------------------------- servers

/**
 * An app entry for the config, with the brief's keys. Limits merge over
 * {} (server defaults apply to what is left out).
 */
export function app(overrides = {}) {
  const { limits, ...rest } = overrides;
  return {
    id: DEFAULT_APP.id,
    key: DEFAULT_APP.key,
    secret: DEFAULT_APP.secret,
    enabled: true,
    client_events: true,
    ...rest,
    ...(limits ? { limits } : {}),
  };
}

const running = new Set();
function killAll() {
  for (const s of running) {
    try {
      s.proc.kill('SIGKILL');
    } catch {}
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

export class Server {
  constructor({ proc, port, configPath, logPath, apps }) {
    this.proc = proc;
    this.port = port;
    this.host = '127.0.0.1';
    this.configPath = configPath;
    this.logPath = logPath;
    this.apps = apps;
    this.logTail = [];
    this.exitInfo = null;
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        running.delete(this);
        resolve(this.exitInfo);
      });
    });
  }

  get httpURL() {
    return `http://${this.host}:${this.port}`;
  }

  /** ws:// URL of /app/{key} with the query pusher-js 8.6.0 sends by default. */
  wsURL(key = DEFAULT_APP.key, query = 'protocol=7&client=js&version=8.6.0&flash=false') {
    return `ws://${this.host}:${this.port}/app/${encodeURIComponent(key)}${query ? '?' + query : ''}`;
  }

  /** The last lines the server logged (for failure messages). */
  logs(n = 60) {
    return this.logTail.slice(-n).join('\n');
  }

  /** SIGTERM (or sig), then wait for exit; SIGKILL after graceMs. */
  async stop(sig = 'SIGTERM', graceMs = 12000) {
    if (this.exitInfo) return this.exitInfo;
    this.proc.kill(sig);
    const t = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    const info = await this.exited;
    clearTimeout(t);
    return info;
  }
}

/**
 * Start a server. cfg: { apps: [app(...)], pusher: {activity_timeout,...},
 * limits: {...}, shutdown: {...} }. Resolves once /readyz answers 200.
 */
export async function startServer(cfg = {}) {
  // PUSHER_CLUSTER=redis|nats runs every file against a 3-node cluster
  // on that engine, each client and REST call on the next node in turn.
  if (process.env.PUSHER_CLUSTER && !cfg.cluster) {
    const { startClusterServer } = await import('./cluster.mjs');
    return startClusterServer(process.env.PUSHER_CLUSTER, cfg);
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await startServerOnce(cfg);
    } catch (e) {
      // Another process may have taken the free port between our probe and
      // the server's bind; try a new port. An embedded NATS node's route
      // port is in its peers' configs too: its cluster starts again instead.
      if (attempt < 3 && !cfg.cluster?.nats?.embedded && /address already in use/i.test(e.message)) continue;
      throw e;
    }
  }
}

async function startServerOnce(cfg) {
  const bin = await serverBinary();
  const port = await freePort();
  const apps = cfg.apps ?? [app()];
  const config = {
    listen: `127.0.0.1:${port}`,
    log: { level: process.env.PUSHER_SERVER_LOG_LEVEL || 'debug', format: 'text' },
    // Test files open many connections from 127.0.0.1: no per-address
    // connection rate limit unless a test sets one.
    limits: { connection_rate: { per_second: 0 }, ...(cfg.limits || {}) },
    shutdown: { timeout: '5s', ...(cfg.shutdown || {}) },
    pusher: { ...(cfg.pusher || {}), apps },
    // Several servers run at once: keep the Damon TCP port (42069) free
    // (a test that wants Damon gets its WebSocket path only).
    damon: cfg.damon ? { ...cfg.damon, tcp: false } : { enabled: false },
    ...(cfg.cluster ? { cluster: cfg.cluster } : {}),
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-pusher-'));
  const configPath = path.join(dir, 'config.yaml');
  // JSON is valid YAML (1.2 flow style); it keeps the config exact.
  fs.writeFileSync(configPath, `# generated by tests/pusher/harness.mjs\n${JSON.stringify(config, null, 2)}\n`);
  const logPath = path.join(dir, 'server.log');
  const logFile = fs.openSync(logPath, 'a');
  const proc = spawn(bin, ['serve', '-config', configPath], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SWITCHBOARD_CONFIG: '', SWITCHBOARD_LISTEN: '', PORT: '' },
  });
  const srv = new Server({ proc, port, configPath, logPath, apps });
  running.add(srv);
  let logOpen = true;
  const onData = (chunk) => {
    if (logOpen) fs.writeSync(logFile, chunk);
    for (const line of chunk.toString().split('\n')) if (line) srv.logTail.push(line);
    if (srv.logTail.length > 500) srv.logTail.splice(0, srv.logTail.length - 500);
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  // 'close', not 'exit': the pipes may still hold output when the process
  // exits, and a write to the closed file failed with EBADF after a test.
  proc.on('close', () => {
    logOpen = false;
    fs.closeSync(logFile);
  });

  const deadline = Date.now() + 20000;
  for (;;) {
    if (srv.exitInfo) throw new Error(`server exited during startup (${JSON.stringify(srv.exitInfo)}); config ${configPath}\n${srv.logs()}`);
    // Ready, and ours: another file's server may have taken the port
    // between freePort() and this process's bind (then this one exits
    // with "address already in use" and startServer retries), and its
    // /readyz must not count as this server's.
    const listening = srv.logTail.some((l) => l.includes('msg="switchboard listening"') && l.includes(`addr=127.0.0.1:${port} `));
    try {
      const r = await fetch(`${srv.httpURL}/readyz`);
      await r.arrayBuffer();
      if (r.status === 200 && listening) break;
    } catch {}
    if (Date.now() > deadline) {
      await srv.stop('SIGKILL');
      throw new Error(`server not ready after 20 s; config ${configPath}\n${srv.logs()}`);
    }
    await sleep(50);
  }
  return srv;
}

// ---------------------------------------------------------------- raw ws client

/** Parse a frame's data: pusher: events normally carry a JSON string. */
export function dataOf(msg) {
  if (msg == null) return undefined;
  const d = msg.data;
  if (typeof d === 'string') {
    try {
      return JSON.parse(d);
    } catch {
      return d;
    }
  }
  return d;
}

/**
 * A raw WebSocket client that records every text frame. Waiters consume
 * frames in order (take), so a frame matched once is not matched again.
 */
export class RawClient {
  constructor(ws) {
    this.ws = ws;
    this.frames = []; // {raw, msg, at, used}
    this.waiters = [];
    this.binary = 0;
    this.closeInfo = null;
    this.pings = 0;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        for (const w of this.waiters.splice(0)) w.reject(new Error(`socket closed (${code} ${reason}) while waiting for ${w.label}; frames: ${this.dump()}`));
        resolve(this.closeInfo);
      });
    });
    ws.on('ping', () => this.pings++);
    ws.on('error', (e) => {
      this.error = e;
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        this.binary++;
        return;
      }
      const raw = data.toString();
      let msg = null;
      try {
        msg = JSON.parse(raw);
      } catch {}
      const f = { raw, msg, at: Date.now(), used: false };
      this.frames.push(f);
      for (const w of [...this.waiters]) {
        if (!f.used && w.pred(msg, raw)) {
          f.used = true;
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(w.withRaw ? f : msg);
        }
      }
    });
  }

  /**
   * Connect; by default waits for pusher:connection_established and
   * records socketId/activityTimeout. opts.autoPong=false stops `ws` from
   * answering control pings (to test 4201).
   */
  static async connect(url, { established = true, autoPong = true, headers, timeout = 5000 } = {}) {
    const ws = new WebSocket(url, { autoPong, headers, handshakeTimeout: timeout * SCALE });
    const c = new RawClient(ws);
    await withTimeout(
      new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
        ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode} instead of a WebSocket upgrade`)));
      }),
      timeout,
      `WebSocket open ${url}`,
    );
    if (established) {
      const m = await c.take((m) => m?.event === 'pusher:connection_established', timeout, 'pusher:connection_established');
      c.established = m;
      const d = dataOf(m);
      c.socketId = d.socket_id;
      c.activityTimeout = d.activity_timeout;
    }
    return c;
  }

  dump(n = 20) {
    return this.frames.slice(-n).map((f) => f.raw).join('\n  ') || '(none)';
  }

  isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  /** First unconsumed frame matching pred(msg, raw), waiting up to timeout. */
  take(pred, timeout = 3000, label = 'a matching frame', { withRaw = false } = {}) {
    if (typeof pred === 'string') {
      const ev = pred;
      label = ev;
      pred = (m) => m?.event === ev;
    }
    for (const f of this.frames) {
      if (!f.used && pred(f.msg, f.raw)) {
        f.used = true;
        return Promise.resolve(withRaw ? f : f.msg);
      }
    }
    if (this.closeInfo) return Promise.reject(new Error(`socket already closed (${this.closeInfo.code}) waiting for ${label}; frames:\n  ${this.dump()}`));
    timeout *= SCALE;
    return new Promise((resolve, reject) => {
      const w = { pred, resolve, reject, label, withRaw };
      this.waiters.push(w);
      setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) {
          this.waiters.splice(i, 1);
          reject(new Error(`timeout after ${timeout} ms waiting for ${label}; frames so far:\n  ${this.dump()}`));
        }
      }, timeout);
    });
  }

  /** take(event[, channel]) */
  expect(event, channel, timeout = 3000) {
    return this.take((m) => m?.event === event && (channel === undefined || m.channel === channel), timeout, `${event}${channel ? ' on ' + channel : ''}`);
  }

  /** Every frame received so far (parsed) that matches pred. */
  all(pred) {
    return this.frames.filter((f) => pred(f.msg, f.raw)).map((f) => f.msg);
  }

  /**
   * The frames matching pred that no take/expect consumed, once a
   * pusher:ping round trip shows that everything queued for this socket
   * before it has arrived: the check behind every "nothing arrives". The
   * server handles a socket's messages in order and queues a publish on its
   * subscribers' sockets before answering the HTTP call or the publisher's
   * next message, so nothing already sent can still come after the pong
   * (and a closed socket fails the ping instead of passing as silence).
   */
  async quiet(pred = () => true) {
    await this.ping();
    return this.frames.filter((f) => !f.used && pred(f.msg, f.raw)).map((f) => f.msg);
  }

  /** Wait for the close; resolves {code, reason}. */
  waitClose(timeout = 5000) {
    return withTimeout(this.closed, timeout, 'the socket to close');
  }

  /** Round trip: pusher:ping -> pusher:pong. Proves the socket is alive and ordered. */
  async ping(timeout = 3000) {
    this.send({ event: 'pusher:ping', data: {} });
    return this.expect('pusher:pong', undefined, timeout);
  }

  /**
   * Subscribe and wait for subscription_succeeded; throws with the error
   * frame if the server refuses.
   */
  async subscribe(channel, { auth, channel_data, timeout = 3000 } = {}) {
    const data = { channel };
    if (auth !== undefined) data.auth = auth;
    else data.auth = '';
    if (channel_data !== undefined) data.channel_data = channel_data;
    this.send({ event: 'pusher:subscribe', data });
    const m = await this.take(
      (m) => (m?.event === 'pusher_internal:subscription_succeeded' && m.channel === channel) || m?.event === 'pusher:error' || (m?.event === 'pusher:subscription_error' && m.channel === channel),
      timeout,
      `subscription_succeeded on ${channel}`,
    );
    if (m.event !== 'pusher_internal:subscription_succeeded') throw new Error(`subscribe ${channel} refused: ${JSON.stringify(m)}`);
    return m;
  }

  unsubscribe(channel) {
    this.send({ event: 'pusher:unsubscribe', data: { channel } });
  }

  close(code = 1000) {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code);
    return this.closed;
  }

  terminate() {
    this.ws.terminate();
    return this.closed;
  }
}

// ---------------------------------------------------------------- SDKs

/** The `pusher` server SDK pointed at srv for app a. */
export function sdk(srv, a = DEFAULT_APP, extra = {}) {
  return new PusherServer({
    appId: a.id,
    key: a.key,
    secret: a.secret,
    host: srv.host,
    port: String(srv.port),
    useTLS: false,
    encryptionMasterKeyBase64: ENCRYPTION_MASTER_KEY_B64,
    timeout: 5000,
    ...extra,
  });
}

/**
 * pusher-js 8.6.0 in Node (its node build bundles its own WebSocket
 * client), on srv's ws transport only. Channel authorization and user
 * authentication go through customHandler and the server SDK, so no auth
 * HTTP server is needed.
 *
 * opts.presence(channelName) -> presence data {user_id, user_info}
 * opts.user -> user data for signin {id, user_info, watchlist}
 * opts.authorize(params, sdk) -> override of the channel auth response
 */
export function pusherJs(srv, opts = {}) {
  const a = opts.app ?? DEFAULT_APP;
  const server = opts.sdk ?? sdk(srv, a);
  const client = new PusherJS(a.key, {
    cluster: 'mt1',
    wsHost: srv.host,
    wsPort: srv.port,
    wssPort: srv.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    channelAuthorization: {
      customHandler: (params, cb) => {
        try {
          if (opts.authorize) return cb(null, opts.authorize(params, server));
          const { socketId, channelName } = params;
          if (channelName.startsWith('presence-')) {
            const pd = opts.presence ? opts.presence(channelName) : { user_id: 'anon', user_info: {} };
            if (pd === null) return cb(null, server.authorizeChannel(socketId, channelName));
            return cb(null, server.authorizeChannel(socketId, channelName, pd));
          }
          return cb(null, server.authorizeChannel(socketId, channelName));
        } catch (e) {
          return cb(e, null);
        }
      },
    },
    userAuthentication: {
      customHandler: (params, cb) => {
        try {
          if (!opts.user) throw new Error('no user configured for this client');
          cb(null, server.authenticateUser(params.socketId, opts.user));
        } catch (e) {
          cb(e, null);
        }
      },
    },
    ...(opts.options || {}),
  });
  client.sdk = server;
  return client;
}

/** Resolve when a pusher-js client reaches state `connected`. */
/** The clients one test file opens, closed together when the file ends. */
export class Clients {
  constructor(getServer) {
    this.getServer = getServer;
    this.all = [];
  }
  /** A pusher-js client on the file's server. */
  pusher(opts) {
    const p = pusherJs(this.getServer(), opts);
    this.all.push(p);
    return p;
  }
  /** A raw ws client connected to /app/{key}. */
  async raw(key) {
    const c = await RawClient.connect(this.getServer().wsURL(key));
    this.all.push(c);
    return c;
  }
  closeAll() {
    for (const c of this.all.splice(0)) {
      try {
        c.disconnect ? c.disconnect() : c.close();
      } catch {}
    }
  }
}

export function connected(client, timeout = 5000) {
  if (client.connection.state === 'connected') return Promise.resolve(client.connection.socket_id);
  return withTimeout(
    new Promise((resolve) => {
      const cb = () => {
        client.connection.unbind('connected', cb);
        resolve(client.connection.socket_id);
      };
      client.connection.bind('connected', cb);
    }),
    timeout,
    'pusher-js connected',
  );
}

/**
 * Subscribe with pusher-js; resolve with the subscription_succeeded
 * payload (Members for presence), reject on pusher:subscription_error.
 */
export function subscribed(client, name, timeout = 5000) {
  const ch = client.subscribe(name);
  return withTimeout(
    new Promise((resolve, reject) => {
      ch.bind('pusher:subscription_succeeded', (d) => resolve({ channel: ch, data: d }));
      ch.bind('pusher:subscription_error', (e) => reject(Object.assign(new Error(`subscription_error on ${name}: ${JSON.stringify(e)}`), { status: e?.status, detail: e })));
    }),
    timeout,
    `pusher-js subscription to ${name}`,
  );
}

/** Collect every event a pusher-js channel emits (incl. pusher: ones). */
export function record(channel) {
  const events = [];
  channel.bind_global((event, data, metadata) => events.push({ event, data, metadata, at: Date.now() }));
  return events;
}

// ---------------------------------------------------------------- webhooks

/** A plain node:http server that records webhook POSTs. */
export class WebhookReceiver {
  constructor({ status = 200 } = {}) {
    this.requests = [];
    this.status = status;
    this.waiters = [];
  }

  async start() {
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const rawBody = Buffer.concat(chunks).toString();
        let body = null;
        try {
          body = JSON.parse(rawBody);
        } catch {}
        const r = { method: req.method, url: req.url, headers: req.headers, rawBody, body, at: Date.now() };
        this.requests.push(r);
        res.writeHead(typeof this.status === 'function' ? this.status(r) : this.status, { 'content-type': 'application/json' });
        res.end('{}');
        for (const w of [...this.waiters]) w();
      });
    });
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${this.server.address().port}/webhooks`;
    return this;
  }

  /** Every event received so far, each with its request. */
  events() {
    const out = [];
    for (const r of this.requests) for (const e of r.body?.events ?? []) out.push({ ...e, _req: r });
    return out;
  }

  /** Wait until pred matches one received event; resolve with it. */
  waitFor(pred, timeout = 5000, label = 'webhook event') {
    timeout *= SCALE;
    const find = () => this.events().find(pred);
    const hit = find();
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const w = () => {
        const h = find();
        if (h) {
          clearTimeout(t);
          this.waiters.splice(this.waiters.indexOf(w), 1);
          resolve(h);
        }
      };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`timeout after ${timeout} ms waiting for ${label}; got: ${JSON.stringify(this.events().map(({ _req, ...e }) => e))}`));
      }, timeout);
      this.waiters.push(w);
    });
  }

  async stop() {
    this.server?.closeAllConnections?.();
    await new Promise((r) => (this.server ? this.server.close(r) : r()));
  }
}

// ---------------------------------------------------------------- raw REST

/**
 * Pusher REST request signing, implemented from the protocol spec (2.1):
 * HMAC-SHA256(secret, METHOD\npath\nsorted k=v&... without auth_signature).
 */
export function signQuery({ method, path: p, params = {}, body, key, secret, timestamp }) {
  const q = { ...params, auth_key: key, auth_timestamp: String(timestamp ?? Math.floor(Date.now() / 1000)), auth_version: '1.0' };
  if (body !== undefined && body !== null && body !== '') q.body_md5 = createHash('md5').update(body).digest('hex');
  const lower = Object.fromEntries(Object.entries(q).map(([k, v]) => [k.toLowerCase(), String(v)]));
  const str = Object.keys(lower)
    .sort()
    .map((k) => `${k}=${lower[k]}`)
    .join('&');
  const signature = createHmac('sha256', secret).update(`${method.toUpperCase()}\n${p}\n${str}`).digest('hex');
  return { params: { ...lower, auth_signature: signature }, toSign: `${method.toUpperCase()}\n${p}\n${str}`, signature };
}

/**
 * Send a signed request with fetch. opts: method, path, params, body (a
 * string or object), app, timestamp, mutate(params) to tamper. Resolves
 * {status, text, json}.
 */
export async function rawRequest(srv, { method = 'GET', path: p, params = {}, body, app: a = DEFAULT_APP, timestamp, mutate } = {}) {
  const bodyStr = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const signed = signQuery({ method, path: p, params, body: bodyStr, key: a.key, secret: a.secret, timestamp });
  const qp = { ...signed.params };
  if (mutate) mutate(qp);
  const qs = Object.entries(qp)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
  const res = await fetch(`${srv.httpURL}${p}?${qs}`, {
    method,
    headers: bodyStr !== undefined ? { 'content-type': 'application/json' } : {},
    body: bodyStr,
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, text, json, headers: res.headers };
}

/** Random suffix for channel names so tests never collide. */
export function uid(prefix = '') {
  return prefix + randomBytes(5).toString('hex');
}

/** pusher-js signin(); resolve with user_data once the server confirmed it. */
export async function signedIn(client, timeout = 5000) {
  client.signin();
  const deadline = Date.now() + timeout;
  while (!client.user.signinDonePromise && Date.now() < deadline) await sleep(10);
  await withTimeout(client.user.signinDonePromise, Math.max(1, deadline - Date.now()), 'pusher-js signin');
  if (!client.user.user_data) throw new Error('pusher-js signin did not succeed (user_data is null)');
  return client.user.user_data;
}
