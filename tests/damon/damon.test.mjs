// Black-box tests of Switchboard's Damon front-end with a client that
// behaves like the reference SocketClient library. run.sh starts the
// server and sets DAMON_HOST, DAMON_PORT, DAMON_TOKEN and DAMON_PING_MS.
// On a cluster (DAMON_CLUSTER) DAMON_PORT lists every node's TCP port and
// each client connects to the next node in turn.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { SocketClient, OPCodes } from './socketclient.mjs';
import { Probe } from './probe.mjs';

const host = process.env.DAMON_HOST || '127.0.0.1';
const ports = String(process.env.DAMON_PORT || '').split(',').filter(Boolean).map(Number);
let nextNode = 0;
/** The next node's Damon port (the only one on a single server). */
const port = () => ports[nextNode++ % ports.length];
const token = process.env.DAMON_TOKEN;
const pingMS = Number(process.env.DAMON_PING_MS || 300);
if (!ports.length || !token) throw new Error('run through tests/damon/run.sh (DAMON_PORT and DAMON_TOKEN unset)');

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function client(opts = {}) {
  const c = new SocketClient({ host, port: port(), group: 'damon', token, reconnectDelay: 200, ...opts });
  c.connect();
  return c;
}

async function identified(c) {
  const [data] = await once(c, 'identify');
  return data;
}

/**
 * Watches this process's event loop: the longest time a 20 ms timer was
 * late. A client that did not get to read for a whole ping interval may
 * find two pings in one read without the server having sent them together.
 */
function lagWatch() {
  let last = performance.now(), max = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    max = Math.max(max, now - last - 20);
    last = now;
  }, 20);
  return { stop: () => { clearInterval(timer); return max; } };
}

test('a SocketClient identifies and stays connected through several ping intervals', async () => {
  const lag = lagWatch();
  const c = client();
  try {
    const data = await identified(c);
    assert.match(data.id, UUID);
    assert.equal(data.ping, pingMS);
    await sleep(pingMS * 7);
    assert.equal(c.stats.closes, 0, 'the client was disconnected');
    assert.equal(c.stats.connects, 1);
    assert.ok(c.stats.pings >= 5, `only ${c.stats.pings} pings in ${pingMS * 7} ms`);
    // The server writes each ping on its own, pingMS apart; two in one
    // read are its fault unless this client was stalled for about that
    // long (seen once on a loaded machine, in a full run).
    const maxLag = lag.stop();
    if (maxLag < pingMS / 2) {
      assert.equal(c.stats.parseErrors, 0, `a chunk held more than one document (the client's longest stall: ${Math.round(maxLag)} ms)`);
    }
    assert.equal(c.id, data.id);
  } finally {
    lag.stop();
    c.stop();
  }
});

test('SocketClients exchange GLOBAL, GROUP and DIRECT events; ids are fresh per recipient', async () => {
  const a = client(), b = client();
  const other = client({ group: 'other' });
  try {
    await Promise.all([identified(a), identified(b), identified(other)]);

    // GLOBAL: everyone, the sender included, each with its own id.
    const got = [once(a, 'HELLO'), once(b, 'HELLO'), once(other, 'HELLO')];
    a.sendPayload(OPCodes.EVENT, { n: 1 }, 'HELLO', { target: 'GLOBAL' });
    const msgs = (await Promise.all(got)).map(([m]) => m);
    const ids = new Set(msgs.map((m) => m.id));
    assert.equal(ids.size, 3);
    for (const m of msgs) {
      assert.match(m.id, UUID);
      assert.deepEqual({ ...m, id: undefined }, { id: undefined, op: 0, event: 'HELLO', data: { n: 1 }, intent: { target: 'GLOBAL' } });
    }

    // GROUP: the group's identified members (the reference delivers to nobody).
    const inGroup = [once(a, 'TO_DAMON'), once(b, 'TO_DAMON')];
    let leaked = false;
    other.on('TO_DAMON', () => { leaked = true; });
    b.sendPayload(OPCodes.EVENT, 'x', 'TO_DAMON', { target: 'GROUP', identifier: 'damon' });
    await Promise.all(inGroup);
    // A GLOBAL from the same sender comes after the GROUP on every path
    // (one publisher's events stay in order, across nodes too): once it
    // reached the other group, the GROUP would have too.
    const marker = once(other, 'MARKER');
    b.sendPayload(OPCodes.EVENT, 0, 'MARKER', { target: 'GLOBAL' });
    await marker;
    assert.equal(leaked, false, 'GROUP reached another group');

    // DIRECT by the id from IDENTIFY.
    const direct = once(other, 'PRIVATE');
    a.sendPayload(OPCodes.EVENT, 42, 'PRIVATE', { target: 'DIRECT', identifier: other.id });
    const [pm] = await direct;
    assert.equal(pm.data, 42);
  } finally {
    a.stop(); b.stop(); other.stop();
  }
});

test('the README request/response flow: GROUP request, DIRECT REPLY with its id kept', async () => {
  const requester = await Probe.connect('REQUESTER', { host, port: port() });
  const responder = client();
  try {
    await identified(responder);
    await requester.identify('damon', token);
    // The responder answers INFO requests the way the README describes.
    responder.on('INFO', (m) => {
      responder.send({ id: m.id, op: OPCodes.REPLY, event: 'INFO', data: { users: 7 }, intent: { target: 'DIRECT', identifier: m.data.requester } });
    });
    requester.send({ op: 0, event: 'INFO', data: { requester: requester.id }, intent: { target: 'GROUP', identifier: 'damon' } });
    const req = await requester.nextJSON(); // the requester is in the group too
    assert.equal(req.event, 'INFO');
    const reply = await requester.nextJSON();
    assert.equal(reply.op, 5);
    assert.match(reply.id, UUID);
    assert.notEqual(reply.id, req.id, 'the responder saw its own fresh id, not the requester\'s');
    assert.deepEqual(reply.data, { users: 7 });
  } finally {
    requester.close();
    responder.stop();
  }
});

test('a SocketClient that stops answering is timed out, and reconnects with a new id', async () => {
  const c = client();
  try {
    const first = await identified(c);
    c.answerPings = false;
    const [reason] = await once(c, 'server_disconnect');
    assert.equal(reason, 'PING_TIMEOUT');
    c.answerPings = true;
    const second = await identified(c); // after reconnectDelay
    assert.notEqual(second.id, first.id);
    assert.equal(c.stats.connects, 2);
    await sleep(pingMS * 4);
    assert.equal(c.stats.closes, 1, 'dropped again after reconnecting');
  } finally {
    c.stop();
  }
});

test('exact DISCONNECT bytes: IDENTIFY_FAILED and MESSAGE_TOO_BIG', async () => {
  const bad = await Probe.connect('BAD', { host, port: port() });
  bad.send({ op: 1, data: { group: 'g1', token: 'wrong' } });
  assert.equal(await bad.next(), '{"op":2,"data":"IDENTIFY_FAILED"}');
  await bad.closedPromise;

  const big = await Probe.connect('BIG', { host, port: port() });
  big.send(JSON.stringify({ op: 0, event: 'BIG', data: 'x'.repeat(40000), intent: { target: 'GLOBAL' } }));
  assert.equal(await big.next(), '{"op":2,"data":"MESSAGE_TOO_BIG"}');
  await big.closedPromise;
});

test('the reference transcript: silent drops, client PING, coalesced documents', async () => {
  const c = await Probe.connect('C', { host, port: port() });
  try {
    c.send('{"op":1}'); // IDENTIFY without data: no reply
    c.send('{"op":0,"event":"NOINTENT","data":4}');
    c.send('{"op":5,"event":"LOWER","data":5,"intent":{"target":"global"}}');
    // None of these is answered: the PONG is the next document.
    c.send('{"op":3}');
    assert.equal(await c.next(), '{"op":4}');
    // The reference loses both of these; Switchboard answers both.
    c.send('{"op":3}{"op":3}');
    assert.equal(await c.next(), '{"op":4}');
    assert.equal(await c.next(), '{"op":4}');
  } finally {
    c.close();
  }
});
