// Black-box harness for Switchboard's Decentraland ws-room transport.
//
// Everything goes through the public surface of a running server (run.sh
// starts it and exports DCL_WS_URL and DCL_HTTP_URL): WebSockets on
// /rooms/{roomId}, /status, /metrics. The packets are encoded and decoded
// with the real @dcl/protocol codec (ts-proto, as the explorers use it) and
// the auth chains are built by the real @dcl/crypto with fresh keys, the way
// the reference service's e2e test, the browser kernel and Godot do.

import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import WebSocket from 'ws';

const require = createRequire(import.meta.url);
export const { WsPacket } = require('@dcl/protocol/out-js/decentraland/kernel/comms/rfc5/ws_comms.gen.js');
export const { Packet: Rfc4Packet } = require('@dcl/protocol/out-js/decentraland/kernel/comms/rfc4/comms.gen.js');
export const { Authenticator } = require('@dcl/crypto');
const { createUnsafeIdentity, ethSign } = require('@dcl/crypto/dist/crypto.js');

// On a cluster (run.sh with DCL_CLUSTER) the variables list every node,
// comma-separated: each socket opens on the next node in turn, /metrics
// values are summed over the nodes and /status merged (each node reports
// its own sessions, docs/decentraland.md), and other HTTP goes to the first.
const WS_URLS = (process.env.DCL_WS_URL || 'ws://127.0.0.1:6001').split(',');
const HTTP_URLS = (process.env.DCL_HTTP_URL || 'http://127.0.0.1:6001').split(',');
export const WS_URL = WS_URLS[0];
export const HTTP_URL = HTTP_URLS[0];
export const CLUSTER = WS_URLS.length > 1;

/**
 * Whether two peers are on one node (always on one server). Two guarantees
 * hold only then (docs/decentraland.md "Across a cluster"): the
 * challenge's already_connected hint (per node), and the old session's
 * peer_leave before the new one's peer_join (published by two nodes
 * otherwise, so they reach a third peer in either order).
 */
export function sameNode(a, b) {
  return a.node === b.node;
}

let nextNode = 0;

/** Upper bounds on waits are multiplied by this (busy 2-core machines). */
export const SCALE = Number(process.env.DCL_TIMEOUT_SCALE || 1);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A room name no other test uses. */
export function roomName(label) {
  return `${label}-${randomBytes(4).toString('hex')}`;
}

/** The reference's craftMessage: WsPacket.encode(...).finish(). */
export function craftMessage(packet) {
  return WsPacket.encode(WsPacket.fromPartial ? WsPacket.fromPartial(packet) : packet).finish();
}

export function normalizeAddress(a) {
  return a.toLowerCase();
}

export function expectPacket(packet, $case) {
  if (!packet.message || packet.message.$case !== $case) {
    throw new Error(`expected ${$case}, got ${JSON.stringify(packet.message?.$case)}`);
  }
  return packet.message[$case];
}

let markerSeq = 0;

/**
 * "Nothing else arrived" without waiting for a silence: `from`, a joined
 * peer, sends an update with a fresh body, and it must be the very next
 * packet each of `receivers` (peers in its room) gets. Anything queued for
 * them earlier comes first and fails; a closed socket fails too.
 */
export async function expectMarkerNext(from, receivers, label = 'marker') {
  const seq = ++markerSeq;
  const body = Uint8Array.from([0x4d, 0x4b, (seq >> 8) & 0xff, seq & 0xff]);
  await from.sendUpdate(body);
  for (const r of receivers) {
    const u = expectPacket(await r.next(1000, label), 'peerUpdateMessage');
    if (u.fromAlias !== from.welcomeMessage.alias || Buffer.compare(Buffer.from(u.body), Buffer.from(body)) !== 0) {
      throw new Error(`${label}: got an update from ${u.fromAlias} ${Buffer.from(u.body).toString('hex')}, want the marker`);
    }
  }
}

// ---------------------------------------------------------------- identities

/**
 * The reference e2e helper: a wallet and an ephemeral key, and
 * sign(challenge) = Authenticator.createAuthChain(real, ephemeral, minutes, challenge).
 */
export function createEphemeralIdentity(minutes = 10) {
  const real = createUnsafeIdentity();
  const ephemeral = createUnsafeIdentity();
  return {
    kind: 'e2e',
    address: real.address,
    real,
    sign: async (challenge) => Authenticator.createAuthChain(real, ephemeral, minutes, challenge),
  };
}

/**
 * The browser kernel: a stored login made once with initializeAuthChain
 * (the wallet personal_signs the delegation), then signPayload per challenge.
 */
export async function createKernelIdentity() {
  const real = createUnsafeIdentity();
  const ephemeral = createUnsafeIdentity();
  const key = Buffer.from(real.privateKey.replace(/^0x/, ''), 'hex');
  const login = await Authenticator.initializeAuthChain(real.address, ephemeral, 60, async (msg) => ethSign(key, msg));
  return {
    kind: 'kernel',
    address: real.address,
    real,
    sign: async (challenge) => Authenticator.signPayload(login, challenge),
  };
}

/** The Godot explorer: a two-link chain signed by the wallet itself. */
export function createGodotIdentity() {
  const real = createUnsafeIdentity();
  return {
    kind: 'godot',
    address: real.address,
    real,
    sign: async (challenge) =>
      Authenticator.createSimpleAuthChain(challenge, real.address, Authenticator.createSignature(real, challenge)),
  };
}

// ---------------------------------------------------------------- sockets

/**
 * A ws socket with an async queue of decoded packets (the reference's
 * wsAsAsyncChannel) and a record of how it closed.
 */
const allPeers = new Set();
// A failed test must not keep its file's process alive with open sockets.
after(() => {
  for (const p of allPeers) p.ws.terminate();
});

export class Peer {
  constructor(ws) {
    this.ws = ws;
    allPeers.add(this);
    this.queue = [];
    this.waiters = [];
    this.received = 0;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        allPeers.delete(this);
        resolve(this.closeInfo);
        for (const w of this.waiters.splice(0)) w.reject(new Error('socket closed'));
      });
    });
    ws.on('message', (data, isBinary) => {
      this.received++;
      let packet;
      try {
        packet = WsPacket.decode(new Uint8Array(data));
      } catch (e) {
        packet = { undecodable: true, data, error: e };
      }
      packet.isBinary = isBinary;
      const w = this.waiters.shift();
      if (w) w.resolve(packet);
      else this.queue.push(packet);
    });
    ws.on('error', () => {});
  }

  get isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** The next packet within ms, or a rejection. */
  next(ms, label = 'packet') {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.closeInfo) return Promise.reject(new Error(`${label}: socket closed`));
    ms *= SCALE;
    return new Promise((resolve, reject) => {
      const w = {};
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${label}: nothing within ${ms} ms`));
      }, ms);
      w.resolve = (p) => {
        clearTimeout(t);
        resolve(p);
      };
      w.reject = (e) => {
        clearTimeout(t);
        reject(new Error(`${label}: ${e.message}`));
      };
      this.waiters.push(w);
    });
  }

  /** Skips packets until one of $case arrives (within ms overall). */
  async until($case, ms, label = $case) {
    const end = Date.now() + ms * SCALE;
    for (;;) {
      const p = await this.next(Math.max(1, (end - Date.now()) / SCALE), label);
      if (p.message?.$case === $case) return p.message[$case];
    }
  }


  send(bytes) {
    return new Promise((resolve, reject) => this.ws.send(bytes, (err) => (err ? reject(err) : resolve())));
  }

  sendPacket(packet) {
    return this.send(craftMessage(packet));
  }

  sendUpdate(body, unreliable = false, fromAlias = 0) {
    return this.sendPacket({
      message: { $case: 'peerUpdateMessage', peerUpdateMessage: { fromAlias, body: Uint8Array.from(body), unreliable } },
    });
  }

  close() {
    this.ws.close();
  }

  /**
   * What the client knows of the close handshake and the socket, for a
   * failure message: whether our close frame arrived and theirs went out,
   * and whether the server's FIN did.
   */
  state() {
    const ws = this.ws;
    const s = ws._socket;
    return [
      `readyState ${ws.readyState}`,
      `close frame received ${ws._closeFrameReceived}, sent ${ws._closeFrameSent}`,
      `messages ${this.received}`,
      s
        ? `socket ${s.readyState}, destroyed ${s.destroyed}, FIN seen ${s.readableEnded}, bytes read ${s.bytesRead}, written ${s.bytesWritten}, local port ${s.localPort}`
        : 'no socket',
    ].join('; ');
  }

  /** Waits for the close (within ms) and returns {code, reason}. */
  async closedWithin(ms, label = 'close') {
    ms *= SCALE;
    let t;
    const timeout = new Promise((_, rej) => {
      t = setTimeout(() => rej(new Error(`${label}: still open after ${ms} ms (${this.state()})`)), ms);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(t);
    }
  }
}

/** Opens a socket on path (e.g. /rooms/x) with the given subprotocols. */
export function open(path, protocols) {
  const node = nextNode++ % WS_URLS.length;
  const ws = new WebSocket(WS_URLS[node] + path, protocols);
  ws.binaryType = 'nodebuffer';
  const peer = new Peer(ws);
  peer.node = node; // index of the node it is on (always 0 on one server)
  peer.opened = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  return peer;
}

/**
 * The reference e2e connectSocket: identification, challenge, signed chain,
 * welcome. Returns the peer with welcomeMessage, challengeMessage, identity.
 */
export async function connectSocket(identity, room, { protocols, path } = {}) {
  const peer = open(path || `/rooms/${room}`, protocols);
  await peer.opened;
  await peer.sendPacket({ message: { $case: 'peerIdentification', peerIdentification: { address: identity.address } } });
  const challengeMessage = expectPacket(await peer.next(2000, 'challenge for ' + identity.address), 'challengeMessage');
  const authChainJson = JSON.stringify(await identity.sign(challengeMessage.challengeToSign));
  await peer.sendPacket({ message: { $case: 'signedChallengeForServer', signedChallengeForServer: { authChainJson } } });
  const welcomeMessage = expectPacket(await peer.next(3000, 'welcome for ' + identity.address), 'welcomeMessage');
  return Object.assign(peer, { welcomeMessage, challengeMessage, identity, authChainJson });
}

// ---------------------------------------------------------------- HTTP

export async function getJSON(path) {
  if (CLUSTER && path.endsWith('/status')) return clusterStatus(path);
  const res = await fetch(HTTP_URL + path);
  return { status: res.status, headers: res.headers, body: await res.json() };
}

/**
 * /status of every node merged as one node would answer for the whole
 * cluster: users summed, each room's count summed, rooms counted once.
 * Every node must answer 200; headers are the first node's.
 */
async function clusterStatus(path) {
  const all = await Promise.all(HTTP_URLS.map(async (u) => {
    const res = await fetch(u + path);
    return { status: res.status, headers: res.headers, body: await res.json() };
  }));
  const bad = all.find((r) => r.status !== 200);
  if (bad) return bad;
  const counts = new Map();
  for (const r of all) for (const d of r.body.details) counts.set(d.roomName, (counts.get(d.roomName) ?? 0) + d.count);
  const details = [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([roomName, count]) => ({ roomName, count }));
  const body = { ...all[0].body, users: all.reduce((n, r) => n + r.body.users, 0), rooms: counts.size, details };
  return { status: 200, headers: all[0].headers, body };
}

/** The value of an unlabelled series on /metrics (0 when absent), summed over the nodes. */
export async function metric(name, labels = '') {
  let sum = 0;
  for (const u of HTTP_URLS) {
    const text = await (await fetch(u + '/metrics')).text();
    const want = labels ? `${name}{${labels}}` : name;
    for (const line of text.split('\n')) {
      if (line.startsWith('#')) continue;
      const i = line.lastIndexOf(' ');
      if (line.slice(0, i) === want) sum += Number(line.slice(i + 1));
    }
  }
  return sum;
}

/** The text of /metrics. */
export async function metricsText() {
  return (await fetch(HTTP_URL + '/metrics')).text();
}

/** Polls fn until truthy, within ms. */
export async function eventually(fn, ms = 3000, label = 'condition') {
  ms *= SCALE;
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`${label}: not true within ${ms} ms (last ${last})`);
    await sleep(20);
  }
}
