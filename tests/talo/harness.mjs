// Black-box harness for Switchboard's Talo Socket.
//
// Each test file starts the real server binary (SWITCHBOARD_BIN, set by
// run.sh through tests/lib.sh) with a configuration of its own: a fresh
// SQLite store in a temporary directory, the Talo HTTP rate limits off
// unless the file asks for them, no per-address connection rate limit. A
// game and an access key are made with the CLI verbs an operator uses
// (`switchboard talo create-game` / `create-key`). Then the tests talk HTTP
// with fetch and WebSocket with ws, sending what the Godot plugin and the
// Unity package send (spec sections 14 and 18) and comparing what comes
// back byte for byte. Timestamps come from the server's real clock, so
// they are checked to be ISO-8601 UTC with milliseconds and then replaced
// by "<T>" before comparing (normalize).
//
// With TALO_CLUSTER=redis|nats (run.sh) each file's server is instead three
// nodes of one cluster (tests/clusternodes.mjs) sharing a PostgreSQL store,
// and every request and socket goes to the next node in turn.

import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import WebSocket from 'ws';
import { freePort } from '../ports.mjs';

/** Upper bounds on waits are multiplied by this (busy 2-core machines). */
export const SCALE = Number(process.env.TALO_TIMEOUT_SCALE || 1);

/** The scopes the Godot and Unity demos' keys hold for sockets, channels and presence. */
export const PLAYER_SCOPES = [
  'read:players', 'write:players', 'read:playerPresence', 'write:playerPresence',
  'read:gameChannels', 'write:gameChannels',
];

const ISO = /"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"/g;

/** Replaces every ISO timestamp string in a raw JSON text by "<T>". */
export function normalize(text) {
  return text.replace(ISO, '"<T>"');
}


// Registered at load (not in a before hook, where after() would bind to
// the hook): every server this file started stops when the file ends.
const servers = new Set();
after(async () => {
  for (const s of servers) await s.stop();
});

// A run cut short (run.sh's timeout sends SIGTERM) must not leave servers
// behind: they are this process's children, killed on its way out.
function killServers() {
  for (const s of servers) if (!s.exited) s.proc.kill('SIGKILL');
}
process.on('exit', killServers);
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    killServers();
    process.exit(128 + (sig === 'SIGTERM' ? 15 : 2));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * TALO_CLUSTER=redis|nats (run.sh sets it with TALO_PG_DSN): every file's
 * server is three nodes of one cluster on that engine, sharing a store on
 * PostgreSQL (a fresh database per file), and each HTTP request and each
 * socket goes to the next node in turn, so a ticket is issued on one node
 * and redeemed on another and pushes cross nodes.
 */
export const CLUSTER = process.env.TALO_CLUSTER || '';

/** The config every server of the suite shares (talo merged into its talo section). */
function baseConfig(port, talo) {
  return {
    listen: `127.0.0.1:${port}`,
    log: { level: process.env.TALO_SERVER_LOG_LEVEL || 'debug', format: 'text' },
    limits: { connection_rate: { per_second: 0 } },
    shutdown: { timeout: '5s' },
    pusher: { enabled: false },
    damon: { enabled: false },
    talo: { enabled: true, http_rate_limits: false, ...talo },
  };
}

/** A fresh database on the run's PostgreSQL; its DSN. */
function freshDatabase() {
  const base = process.env.TALO_PG_DSN;
  if (!base) throw new Error('TALO_CLUSTER needs TALO_PG_DSN: run the suite through tests/talo/run.sh');
  const name = `talo_${randomBytes(6).toString('hex')}`;
  execFileSync('psql', [base, '-q', '-v', 'ON_ERROR_STOP=1', '-c', `CREATE DATABASE ${name}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  const u = new URL(base);
  u.pathname = `/${name}`;
  return u.toString();
}

async function startClusterServer(talo) {
  const { startCluster } = await import('../clusternodes.mjs');
  const bin = binary();
  const dsn = freshDatabase();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-talo-cluster-'));
  const cluster = await startCluster({
    bin, engine: CLUSTER, n: 3, dir,
    config: (_i, section, port) => {
      const c = baseConfig(port, { postgres_dsn: dsn, ...talo });
      return { ...c, cluster: section };
    },
  });
  const first = cluster.nodes[0];
  const env = { ...process.env, SWITCHBOARD_CONFIG: '', SWITCHBOARD_LISTEN: '', PORT: '' };
  const srv = new Server({
    bin, port: first.port, ports: cluster.nodes.map((n) => n.port), dir, configPath: first.configPath, env,
    proc: {
      kill: (sig) => {
        for (const n of cluster.nodes) n.proc.kill(sig);
        cluster.redis?.proc.kill(sig);
      },
      on() {},
    },
  });
  srv.cluster = cluster;
  srv.logPath = first.logPath;
  servers.add(srv);
  return srv;
}

function binary() {
  const bin = process.env.SWITCHBOARD_BIN;
  if (!bin) throw new Error('SWITCHBOARD_BIN is not set: run the suite through tests/talo/run.sh');
  return bin;
}

/**
 * Starts the server with a temporary configuration; `talo` is merged into
 * the talo section. Returns a Server; it is stopped after the file.
 */
export async function startServer({ talo = {} } = {}) {
  if (CLUSTER) return startClusterServer(talo);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startServerOnce(talo);
    } catch (e) {
      // Another process may take the probed port before the server binds it.
      if (attempt < 3 && /address already in use/i.test(e.message)) continue;
      throw e;
    }
  }
}

async function startServerOnce(talo) {
  const bin = binary();
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-talo-'));
  const config = baseConfig(port, { store_path: path.join(dir, 'talo.db'), ...talo });
  const configPath = path.join(dir, 'config.yaml');
  // JSON is valid YAML (1.2 flow style); it keeps the config exact.
  fs.writeFileSync(configPath, `# generated by tests/talo/harness.mjs\n${JSON.stringify(config, null, 2)}\n`);
  const logPath = path.join(dir, 'server.log');
  const log = fs.openSync(logPath, 'a');
  const env = { ...process.env, SWITCHBOARD_CONFIG: '', SWITCHBOARD_LISTEN: '', PORT: '' };
  const proc = spawn(bin, ['serve', '-config', configPath], { cwd: dir, stdio: ['ignore', log, log], env });
  const srv = new Server({ bin, proc, port, dir, configPath, logPath, env });
  servers.add(srv);
  const deadline = Date.now() + 20000 * SCALE;
  for (;;) {
    if (srv.exited) throw new Error(`server exited during startup; config ${configPath}\n${srv.logs()}`);
    try {
      const r = await fetch(`${srv.httpURL}/readyz`);
      await r.arrayBuffer();
      if (r.status === 200) break;
    } catch {}
    if (Date.now() > deadline) {
      await srv.stop();
      throw new Error(`server not ready after 20 s; config ${configPath}\n${srv.logs()}`);
    }
    await sleep(50);
  }
  return srv;
}

export class Server {
  constructor({ bin, proc, port, ports, dir, configPath, logPath, env }) {
    Object.assign(this, { bin, proc, port, dir, configPath, logPath, env });
    this.ports = ports ?? [port];
    this.nextNode = 0;
    this.exited = false;
    this.exit = new Promise((resolve) => proc.on('exit', (code, signal) => {
      this.exited = true;
      resolve({ code, signal });
    }));
  }

  /** The port of the node the next request or socket goes to (round-robin on a cluster). */
  nodePort() {
    return this.ports[this.nextNode++ % this.ports.length];
  }

  get httpURL() {
    return `http://127.0.0.1:${this.nodePort()}`;
  }

  /** socket_url: the default socket_path on the next node. */
  get wsURL() {
    return `ws://127.0.0.1:${this.nodePort()}/talo`;
  }

  logs() {
    if (this.cluster) return this.cluster.logs(200);
    try {
      return fs.readFileSync(this.logPath, 'utf8').split('\n').slice(-200).join('\n');
    } catch {
      return '';
    }
  }

  /** Runs `switchboard talo VERB ARGS... -config FILE` and returns its stdout, trimmed. */
  cli(...args) {
    return execFileSync(this.bin, ['talo', ...args, '-config', this.configPath], { env: this.env, encoding: 'utf8' }).trim();
  }

  /** A game (create-game) and an access key for it (create-key). */
  provision(name, scopes = PLAYER_SCOPES) {
    const id = this.cli('create-game', name);
    const key = this.cli('create-key', '--game', name, '--scopes', scopes.join(','));
    return { id: Number(id), name, key };
  }

  async stop() {
    if (this.cluster) {
      await this.cluster.stop();
      this.exited = true;
      return;
    }
    if (this.exited) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 10000);
    await this.exit;
    clearTimeout(t);
  }

  /**
   * An HTTP request with the headers both clients send on every request
   * (spec section 7); `headers` adds or overrides. Returns {status, body,
   * headers} with the body as text.
   */
  async http(method, route, key, { body, headers = {} } = {}) {
    const h = {
      'Content-Type': 'application/json',
      Accept: 'application/json',
      'X-Talo-Dev-Build': '0',
      'X-Talo-Include-Dev-Data': '0',
      'X-Talo-Client': 'godot:0.49.1',
      ...headers,
    };
    if (key) h.Authorization = `Bearer ${key}`;
    const r = await fetch(this.httpURL + route, { method, headers: h, body });
    return { status: r.status, body: await r.text(), headers: r.headers };
  }

  /** GET /v1/players/identify: {alias (raw JSON text), aliasId, playerId, socketToken}. */
  async identify(key, identifier, { service = 'username', headers = {} } = {}) {
    const r = await this.http('GET', `/v1/players/identify?service=${service}&identifier=${identifier}`, key, { headers });
    if (r.status !== 200) throw new Error(`identify ${identifier}: ${r.status} ${r.body}`);
    const m = /^\{"alias":(.*),"socketToken":"([0-9a-f-]{36})"\}$/.exec(r.body);
    if (!m) throw new Error(`identify ${identifier}: unexpected body ${r.body}`);
    const alias = JSON.parse(m[1]);
    return { raw: m[1], aliasId: alias.id, playerId: alias.player.id, socketToken: m[2], identifier };
  }

  /** POST /v1/socket-tickets with an empty body, as Godot sends it. */
  async ticket(key) {
    const r = await this.http('POST', '/v1/socket-tickets', key, { body: '' });
    const m = /^\{"ticket":"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"\}$/.exec(r.body);
    if (r.status !== 200 || !m) throw new Error(`socket-tickets: ${r.status} ${r.body}`);
    return m[1];
  }

  /** A WebSocket to "{socket_url}/?ticket=..." (what both clients dial). */
  dial(ticket, suffix = '/?ticket=') {
    return new Client(new WebSocket(`${this.wsURL}${suffix}${ticket ?? ''}`));
  }

  /** Ticket, connect, v1.connected. */
  async connect(key) {
    const c = this.dial(await this.ticket(key));
    await c.expect('{"res":"v1.connected","data":{}}');
    return c;
  }
}

const allClients = new Set();
after(() => {
  for (const c of allClients) c.ws.terminate();
});

/**
 * A WebSocket that queues every frame ({text, binary}) in arrival order
 * and records how it closed. next() takes frames in order, so a frame is
 * matched once.
 */
export class Client {
  constructor(ws) {
    this.ws = ws;
    allClients.add(this);
    this.frames = [];
    this.waiters = [];
    this.open = new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    this.open.catch(() => {});
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        allClients.delete(this);
        resolve(this.closeInfo);
        for (const w of this.waiters.splice(0)) w.reject(new Error(`socket closed (${code}) while waiting for a frame`));
      });
    });
    ws.on('error', () => {}); // the close event reports it
    ws.on('message', (data, isBinary) => {
      const f = { text: data.toString('utf8'), binary: isBinary };
      const w = this.waiters.shift();
      if (w) w.resolve(f);
      else this.frames.push(f);
    });
  }

  /** The next frame, or an error after ms (or when the socket closes first). */
  next(ms = 3000, label = 'a frame') {
    if (this.frames.length) return Promise.resolve(this.frames.shift());
    if (this.closeInfo) return Promise.reject(new Error(`socket closed (${this.closeInfo.code}) before ${label}`));
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no frame within ${ms * SCALE} ms, waiting for ${label}`));
      }, ms * SCALE);
      this.waiters.push(w);
    });
  }

  /** The next frame must be a text frame equal to want (timestamps normalized on both sides). */
  async expect(want) {
    const f = await this.next(3000, want.slice(0, 80));
    if (f.binary) throw new Error(`got a binary frame ${f.text}, want text ${want}`);
    for (const ts of f.text.match(ISO) || []) {
      if (Number.isNaN(Date.parse(JSON.parse(ts)))) throw new Error(`bad timestamp ${ts} in ${f.text}`);
    }
    const got = normalize(f.text);
    if (got !== normalize(want)) throw new Error(`frame mismatch\n got ${got}\nwant ${normalize(want)}`);
    return f.text;
  }

  send(text) {
    this.ws.send(text);
  }

  sendBinary(buf) {
    this.ws.send(buf, { binary: true });
  }

  /**
   * Nothing is queued before a marker: the text heartbeat is answered by
   * the same reader that routes requests, so its echo must be the very
   * next frame (a frame queued earlier fails; a closed socket fails).
   */
  async nothingQueued() {
    this.send('v1.heartbeat');
    const f = await this.next(3000, 'the heartbeat echo');
    if (f.text !== 'v1.heartbeat' || f.binary) throw new Error(`got ${f.text} before the heartbeat echo`);
  }

  close() {
    this.ws.close(1000);
    return this.closed;
  }
}

// ---------------------------------------------------------------- frames (spec sections 4-6)

/** The alias JSON with its player's presence replaced (presence: a JSON text or "null"). */
export function withPresence(aliasRaw, presence) {
  const n = normalize(aliasRaw);
  const out = n.replace(/,"presence":(null|\{"online":(true|false),"customStatus":"[^"]*","updatedAt":"<T>"\})\},"lastSeenAt"/, `,"presence":${presence}},"lastSeenAt"`);
  if (out === n && !n.includes(`"presence":${presence}`)) throw new Error(`no presence in ${aliasRaw}`);
  return out;
}

export function presenceLite(online, status = '') {
  return `{"online":${online},"customStatus":"${status}","updatedAt":"<T>"}`;
}

export function presenceUpdated(alias, online, status, onlineChanged, statusChanged) {
  return `{"res":"v1.players.presence.updated","data":{"presence":{"playerAlias":${alias},"online":${online},"customStatus":"${status}","updatedAt":"<T>"},` +
    `"meta":{"onlineChanged":${onlineChanged},"customStatusChanged":${statusChanged}}}}`;
}

/** A channel as socket messages carry it (no memberCount). */
export function channelJSON(id, name, owner, messages = 0, { autoCleanup = false, priv = false, temporary = false } = {}) {
  return `{"id":${id},"name":"${name}","owner":${owner},"totalMessages":${messages},"props":[],"autoCleanup":${autoCleanup},` +
    `"private":${priv},"temporaryMembership":${temporary},"createdAt":"<T>","updatedAt":"<T>"}`;
}

export function withCount(channel, n) {
  return `${channel.slice(0, -1)},"memberCount":${n}}`;
}

export function errFrame(req, message, code, cause) {
  const c = cause === undefined ? '' : `,"cause":${JSON.stringify(cause)}`;
  return `{"res":"v1.error","data":{"req":"${req}","message":"${message}","errorCode":"${code}"${c}}}`;
}

/** Godot's socket identify: no sessionToken key without a session. */
export function identifyGodot(p) {
  return `{"req":"v1.players.identify","data":{"playerAliasId":${p.aliasId},"socketToken":"${p.socketToken}"}}`;
}

/** Unity's socket identify: JsonUtility writes the null sessionToken as "". */
export function identifyUnity(p) {
  return `{"req":"v1.players.identify","data":{"playerAliasId":${p.aliasId},"socketToken":"${p.socketToken}","sessionToken":""}}`;
}

/** Sends identify and expects presence.updated then identify.success; returns the online alias JSON. */
export async function identifySocket(c, p, send = identifyGodot) {
  c.send(send(p));
  const online = withPresence(p.raw, presenceLite(true));
  await c.expect(presenceUpdated(online, true, '', true, true));
  await c.expect(`{"res":"v1.players.identify.success","data":${online}}`);
  return online;
}

/** Asserts an HTTP status and body (timestamps normalized; "" for none). */
export function expectHTTP(r, status, body) {
  if (r.status !== status || normalize(r.body) !== normalize(body)) {
    throw new Error(`HTTP mismatch\n got ${r.status} ${normalize(r.body)}\nwant ${status} ${normalize(body)}`);
  }
}
