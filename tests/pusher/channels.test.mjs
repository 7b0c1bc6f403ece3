// Channel types with real clients (pusher-js 8.6.0 + the `pusher` SDK), plus
// raw frames where the wire shape matters: public, private, presence,
// private-encrypted, cache channels and subscription counts (spec §1.6-1.9,
// §1.13, §1.14).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import {
  Clients, startServer, app, RawClient, sdk, pusherJs, connected, subscribed, signedIn, record, dataOf, uid, sleep,
  eventually, ENCRYPTION_MASTER_KEY_B64,
} from './harness.mjs';

const require = createRequire(import.meta.url);
const nacl = require('tweetnacl');

let srv;
const COUNT_APP = { id: 'count-id', key: 'count-key', secret: 'count-secret' };
const TTL_APP = { id: 'ttl-id', key: 'ttl-key', secret: 'ttl-secret' };
const LIMITS_APP = { id: 'limits-id', key: 'limits-key', secret: 'limits-secret' };
const clients = new Clients(() => srv);

const pj = (opts) => clients.pusher(opts);
const raw = (key) => clients.raw(key);

before(async () => {
  srv = await startServer({
    apps: [
      app(),
      app({ ...COUNT_APP, subscription_count: true }),
      app({ ...TTL_APP, cache_ttl: '1s' }),
      app({ ...LIMITS_APP, limits: { max_presence_members: 2, max_presence_member_bytes: 64 } }),
    ],
  });
});
after(async () => {
  clients.closeAll();
  await srv?.stop();
});

test('public channel: subscribers get REST events with the data as published; non-subscribers and unsubscribed clients do not', async () => {
  const s = sdk(srv);
  const ch = uid('public-');
  const a = pj();
  const b = pj();
  const outsider = pj();
  await Promise.all([connected(a), connected(b), connected(outsider)]);
  const [{ channel: ca }, { channel: cb }] = await Promise.all([subscribed(a, ch), subscribed(b, ch)]);
  const other = await subscribed(outsider, uid('public-other-'));
  const ea = record(ca);
  const eb = record(cb);
  const eo = record(other.channel);
  const r = await raw();
  await r.subscribe(ch);
  // pusher-js drops events for channels it is not subscribed to by itself,
  // so who gets nothing is checked on raw sockets.
  const rawOutsider = await raw();
  await rawOutsider.subscribe(uid('public-other-'));

  await s.trigger(ch, 'greeting', { hello: 'world', n: 1 });
  const text = JSON.stringify({ s: 'héllo <b>&amp;</b> \u2028 "quoted" \\ /', big: 'z'.repeat(9000) });
  await s.trigger(ch, 'exact', text);
  await s.trigger(ch, 'plain', 'not json at all');

  await eventually(() => ea.length >= 3 && eb.length >= 3, { label: 'both subscribers got 3 events' });
  for (const ev of [ea, eb]) {
    assert.deepEqual(ev.map((e) => e.event), ['greeting', 'exact', 'plain']);
    assert.deepEqual(ev[0].data, { hello: 'world', n: 1 });
    assert.deepEqual(ev[1].data, JSON.parse(text));
    assert.equal(ev[2].data, 'not json at all');
  }
  const g = await r.expect('greeting', ch);
  assert.equal(g.data, '{"hello":"world","n":1}', 'data is the published string, unchanged');
  assert.equal((await r.expect('exact', ch)).data, text, 'unicode, <>&, U+2028 and 9 KB arrive byte-exact');
  assert.equal((await r.expect('plain', ch)).data, 'not json at all');
  assert.equal(eo.length, 0, 'a client on another channel got nothing');
  // Every publish is queued on its subscribers' sockets before the HTTP
  // answer, and a socket's frames keep their order: what did not arrive
  // before the pong of a ping sent now never comes.
  await rawOutsider.ping();
  assert.deepEqual(rawOutsider.all((m) => m?.channel === ch), [], `a raw client on another channel got nothing: ${rawOutsider.dump()}`);

  const gone = await raw();
  await gone.subscribe(ch);
  gone.unsubscribe(ch);
  await gone.ping(); // the unsubscribe (which has no reply) was handled
  await s.trigger(ch, 'after', {});
  assert.equal((await r.expect('after', ch)).data, '{}', 'a subscriber still gets events');
  await eventually(() => ea.length === 4 && eb.length === 4, { label: 'the pusher-js subscribers got the 4th event' });
  await gone.ping();
  assert.deepEqual(gone.all((m) => m?.event === 'after'), [], `nothing after unsubscribing: ${gone.dump()}`);
  assert.ok(gone.isOpen());
});

test('private channel: authorized through the SDK, events delivered; a bad signature fails with subscription_error 401', async () => {
  const s = sdk(srv);
  const ch = uid('private-');
  const a = pj();
  await connected(a);
  const { channel } = await subscribed(a, ch);
  const got = record(channel);
  await s.trigger(ch, 'secret-ish', { ok: true });
  await eventually(() => got.length === 1, { label: 'private event' });
  assert.deepEqual(got[0].data, { ok: true });

  const wrong = new (require('pusher'))({ appId: 'app-id', key: 'app-key', secret: 'not-the-secret', host: srv.host, port: String(srv.port), useTLS: false });
  const b = pj({ authorize: ({ socketId, channelName }) => wrong.authorizeChannel(socketId, channelName) });
  await connected(b);
  await assert.rejects(subscribed(b, uid('private-denied-')), (e) => e.status === 401);
  assert.equal(b.connection.state, 'connected', 'a refused subscription leaves the connection up');
});

test('presence: one user on two connections: member_added once, member_removed only after the last leaves; members count/me/each', async () => {
  const ch = uid('presence-room-');
  const obs = pj({ presence: () => ({ user_id: 'obs', user_info: { name: 'Observer' } }) });
  const u1a = pj({ presence: () => ({ user_id: 'u1', user_info: { name: 'One' } }) });
  const u1b = pj({ presence: () => ({ user_id: 'u1', user_info: { name: 'One' } }) });
  await Promise.all([connected(obs), connected(u1a), connected(u1b)]);
  const rawObs = await raw();
  await rawObs.subscribe(ch, sdk(srv).authorizeChannel(rawObs.socketId, ch, { user_id: 'rawobs' }));

  const { channel: oc, data: members0 } = await subscribed(obs, ch);
  assert.equal(members0.count, 2, 'obs + rawobs');
  assert.equal(members0.me.id, 'obs');
  assert.deepEqual(members0.me.info, { name: 'Observer' });
  const added = [];
  const removed = [];
  oc.bind('pusher:member_added', (m) => added.push(m));
  oc.bind('pusher:member_removed', (m) => removed.push(m));

  const { data: m1 } = await subscribed(u1a, ch);
  assert.equal(m1.count, 3);
  assert.equal(m1.me.id, 'u1');
  assert.deepEqual(m1.me.info, { name: 'One' });
  const seen = [];
  m1.each((m) => seen.push([m.id, m.info]));
  assert.deepEqual(seen.map((x) => x[0]).sort(), ['obs', 'rawobs', 'u1'], 'members.each visits every user once');
  assert.deepEqual(m1.get('obs').info, { name: 'Observer' });

  await eventually(() => added.length === 1, { label: 'member_added for u1' });
  assert.equal(added[0].id, 'u1');
  assert.deepEqual(added[0].info, { name: 'One' });

  const { data: m2 } = await subscribed(u1b, ch);
  assert.equal(m2.count, 3, 'members are per user: the second connection of u1 does not add one');
  // A member_added goes out before the joiner's subscription_succeeded:
  // rawObs's pong proves none came for u1's second connection.
  await rawObs.ping();
  assert.equal(added.length, 1, 'no second member_added for the same user');
  const u1Added = rawObs.all((m) => m?.event === 'pusher_internal:member_added' && dataOf(m).user_id === 'u1');
  assert.equal(u1Added.length, 1, 'exactly one member_added frame for u1 on the wire');
  assert.equal(oc.members.count, 3);

  u1a.unsubscribe(ch);
  await sleep(500);
  assert.equal(removed.length, 0, 'no member_removed while u1 is still on another connection');
  assert.equal(oc.members.count, 3);

  u1b.disconnect();
  await eventually(() => removed.length === 1, { label: 'member_removed for u1' });
  assert.equal(removed[0].id, 'u1');
  assert.equal(oc.members.count, 2);
  const rm = await rawObs.expect('pusher_internal:member_removed', ch);
  assert.equal(typeof rm.data, 'string');
  assert.deepEqual(JSON.parse(rm.data), { user_id: 'u1' });
  assert.equal(rawObs.all((m) => m?.event === 'pusher_internal:member_removed' && dataOf(m).user_id === 'u1').length, 1);
});

test('presence wire shapes: subscription_succeeded and member_added data are JSON strings; numeric user_id becomes "10"', async () => {
  const s = sdk(srv);
  const ch = uid('presence-shape-');
  const a = await raw();
  const b = await raw();
  const info = { name: 'Mr. Channels' };
  const sa = await a.subscribe(ch, s.authorizeChannel(a.socketId, ch, { user_id: 10, user_info: info }));
  assert.equal(typeof sa.data, 'string', 'presence subscription_succeeded data is a JSON string');
  assert.deepEqual(JSON.parse(sa.data), { presence: { ids: ['10'], hash: { 10: info }, count: 1 } });

  const sb = await b.subscribe(ch, s.authorizeChannel(b.socketId, ch, { user_id: 'b7', user_info: { name: 'B' } }));
  const pb = JSON.parse(sb.data).presence;
  assert.equal(pb.count, 2);
  assert.deepEqual([...pb.ids].sort(), ['10', 'b7']);
  assert.deepEqual(pb.hash, { 10: info, b7: { name: 'B' } });

  const ma = await a.expect('pusher_internal:member_added', ch);
  assert.equal(typeof ma.data, 'string');
  assert.deepEqual(JSON.parse(ma.data), { user_id: 'b7', user_info: { name: 'B' } });
  assert.equal(b.all((m) => m?.event === 'pusher_internal:member_added').length, 0, 'the joiner does not get its own member_added');

  b.close();
  const mr = await a.expect('pusher_internal:member_removed', ch);
  assert.deepEqual(JSON.parse(mr.data), { user_id: 'b7' });
});

test('presence identity from sign-in: auth without channel_data uses the signed-in user', async () => {
  const ch = uid('presence-signin-');
  const watcher = pj({ presence: () => ({ user_id: 'watcher' }) });
  const p = pj({ user: { id: 'signed-7', user_info: { name: 'Seven' } }, presence: () => null });
  await Promise.all([connected(watcher), connected(p)]);
  const { channel: wc } = await subscribed(watcher, ch);
  const added = [];
  wc.bind('pusher:member_added', (m) => added.push(m));
  await signedIn(p);
  const { data: members } = await subscribed(p, ch);
  assert.equal(members.me.id, 'signed-7');
  assert.equal(members.count, 2);
  assert.deepEqual(members.get('signed-7')?.info, { name: 'Seven' });
  await eventually(() => added.length === 1, { label: 'member_added' });
  assert.equal(added[0].id, 'signed-7');
  assert.deepEqual(added[0].info, { name: 'Seven' });
});

test('presence without channel_data and without sign-in is refused (socket stays open)', async () => {
  const c = await raw();
  const ch = uid('presence-anon-');
  c.send({ event: 'pusher:subscribe', data: { channel: ch, ...sdk(srv).authorizeChannel(c.socketId, ch) } });
  const e = await c.expect('pusher:error');
  assert.equal(dataOf(e).code, null);
  await c.ping();
});

test('private-encrypted: the SDK encrypts, pusher-js decrypts; the wire only carries nonce + ciphertext', async () => {
  const s = sdk(srv);
  const ch = uid('private-encrypted-');
  const p = pj();
  await connected(p);
  const { channel } = await subscribed(p, ch);
  const got = record(channel);
  const r = await raw();
  const auth = s.authorizeChannel(r.socketId, ch);
  assert.ok(auth.shared_secret, 'SDK returns a shared_secret for encrypted channels');
  await r.subscribe(ch, { auth: auth.auth });

  const secret = { msg: 'top-secret-plaintext-marker', n: 42 };
  await s.trigger(ch, 'sealed', secret);
  await eventually(() => got.length === 1, { label: 'decrypted event in pusher-js' });
  assert.deepEqual(got[0].data, secret);

  const f = await r.take((m) => m?.event === 'sealed', 3000, 'sealed', { withRaw: true });
  assert.ok(!f.raw.includes('top-secret-plaintext-marker'), 'the server never sees plaintext');
  const payload = JSON.parse(f.msg.data);
  assert.deepEqual(Object.keys(payload).sort(), ['ciphertext', 'nonce']);
  const key = createHash('sha256').update(Buffer.concat([Buffer.from(ch), Buffer.from(ENCRYPTION_MASTER_KEY_B64, 'base64')])).digest();
  assert.equal(Buffer.from(auth.shared_secret, 'base64').equals(key), true, 'shared secret = sha256(channel || master key)');
  const opened = nacl.secretbox.open(Buffer.from(payload.ciphertext, 'base64'), Buffer.from(payload.nonce, 'base64'), key);
  assert.ok(opened, 'tweetnacl opens the box');
  assert.deepEqual(JSON.parse(Buffer.from(opened).toString()), secret);
});

test('cache channel: cache_miss first, then the last published event is replayed to new subscribers', async () => {
  const s = sdk(srv);
  const ch = uid('cache-');
  const a = pj();
  await connected(a);
  const chA = a.subscribe(ch);
  const evA = record(chA);
  await eventually(() => evA.some((e) => e.event === 'pusher:cache_miss'), { label: 'pusher:cache_miss' });
  assert.deepEqual(evA.map((e) => e.event), ['pusher:subscription_succeeded', 'pusher:cache_miss']);

  await s.trigger(ch, 'price', { v: 1 });
  await s.trigger(ch, 'price', { v: 2 });
  await eventually(() => evA.filter((e) => e.event === 'price').length === 2, { label: 'live events' });

  const b = pj();
  await connected(b);
  const chB = b.subscribe(ch);
  const evB = record(chB);
  await eventually(() => evB.some((e) => e.event === 'price'), { label: 'replayed event' });
  await sleep(200);
  assert.deepEqual(evB.map((e) => e.event), ['pusher:subscription_succeeded', 'price']);
  assert.deepEqual(evB[1].data, { v: 2 }, 'the last event, not the first');

  // Wire order and shape.
  const r = await raw();
  r.send({ event: 'pusher:subscribe', data: { channel: ch, auth: '' } });
  const first = await r.take(() => true, 3000, 'first frame after subscribe');
  const second = await r.take(() => true, 3000, 'second frame after subscribe');
  assert.equal(first.event, 'pusher_internal:subscription_succeeded');
  assert.deepEqual(second, { event: 'price', channel: ch, data: '{"v":2}' });

  const r2 = await raw();
  const miss = uid('cache-empty-');
  r2.send({ event: 'pusher:subscribe', data: { channel: miss, auth: '' } });
  assert.equal((await r2.take(() => true)).event, 'pusher_internal:subscription_succeeded');
  const m = await r2.take(() => true);
  assert.equal(m.event, 'pusher:cache_miss');
  assert.equal(m.channel, miss);
});

test('cache variants: private-cache-, presence-cache-, private-encrypted-cache- miss and replay; client events are not cached', async () => {
  const s = sdk(srv);
  for (const prefix of ['private-cache-', 'presence-cache-', 'private-encrypted-cache-']) {
    const ch = uid(prefix);
    const a = await raw();
    const authA = prefix.startsWith('presence') ? s.authorizeChannel(a.socketId, ch, { user_id: 'a' }) : s.authorizeChannel(a.socketId, ch);
    await a.subscribe(ch, { auth: authA.auth, channel_data: authA.channel_data });
    const miss = await a.take(() => true, 3000, `frame after subscribing ${ch}`);
    assert.equal(miss.event, 'pusher:cache_miss', `${prefix}: cache_miss`);
    if (prefix !== 'private-encrypted-cache-') {
      a.send({ event: 'client-typing', channel: ch, data: { x: 1 } });
      await a.ping();
    }
    const b = await raw();
    const authB = prefix.startsWith('presence') ? s.authorizeChannel(b.socketId, ch, { user_id: 'b' }) : s.authorizeChannel(b.socketId, ch);
    await b.subscribe(ch, { auth: authB.auth, channel_data: authB.channel_data });
    assert.equal((await b.take(() => true)).event, 'pusher:cache_miss', `${prefix}: client events are not cached`);

    await s.trigger(ch, 'stored', { p: prefix });
    const c = await raw();
    const authC = prefix.startsWith('presence') ? s.authorizeChannel(c.socketId, ch, { user_id: 'c' }) : s.authorizeChannel(c.socketId, ch);
    await c.subscribe(ch, { auth: authC.auth, channel_data: authC.channel_data });
    const replay = await c.take(() => true, 3000, `replay on ${ch}`);
    assert.equal(replay.event, 'stored', `${prefix}: replay`);
    assert.equal(replay.channel, ch);
  }
});

test('cache_ttl: the cached event expires', async () => {
  const s = sdk(srv, TTL_APP);
  const ch = uid('cache-ttl-');
  await s.trigger(ch, 'short-lived', { v: 1 });
  const a = await raw(TTL_APP.key);
  await a.subscribe(ch);
  assert.equal((await a.take(() => true)).event, 'short-lived');
  await sleep(1600);
  const b = await raw(TTL_APP.key);
  await b.subscribe(ch);
  assert.equal((await b.take(() => true)).event, 'pusher:cache_miss', 'expired after cache_ttl (1 s)');
});

test('subscription_count: pusher-js gets pusher:subscription_count on every (un)subscribe', async () => {
  const ch = uid('counted-');
  const a = pj({ app: COUNT_APP });
  const b = pj({ app: COUNT_APP });
  await Promise.all([connected(a), connected(b)]);
  const countsA = [];
  const countsB = [];
  const chA = a.subscribe(ch);
  chA.bind('pusher:subscription_count', (d) => countsA.push(d.subscription_count));
  await eventually(() => countsA.includes(1), { label: 'count 1 for a' });
  const chB = b.subscribe(ch);
  chB.bind('pusher:subscription_count', (d) => countsB.push(d.subscription_count));
  await eventually(() => countsA.includes(2) && countsB.includes(2), { label: 'count 2 for both' });
  assert.equal(chA.subscriptionCount, 2);
  b.unsubscribe(ch);
  await eventually(() => countsA.at(-1) === 1, { label: 'count back to 1' });
  assert.equal(chA.subscriptionCount, 1);
  assert.deepEqual(countsA, [1, 2, 1]);

  // Raw shape. On NATS a node writes a count change that does not cross
  // zero at its next heartbeat (docs/cluster.md, "Store operations"), so
  // a third node's total may still include b until then: wait for that
  // flush (the cluster harness beats every 200 ms) before r's subscribe.
  if (process.env.PUSHER_CLUSTER === 'nats') await sleep(600);
  const r = await raw(COUNT_APP.key);
  await r.subscribe(ch);
  const f = await r.take((m) => m?.event === 'pusher_internal:subscription_count', 3000, 'subscription_count', { withRaw: true });
  assert.equal(f.raw, `{"event":"pusher_internal:subscription_count","channel":"${ch}","data":"{\\"subscription_count\\":2}"}`);
});

test('subscription_count: not sent by apps without it, nor on presence channels', async () => {
  const ch = uid('uncounted-');
  const a = await raw();
  const b = await raw();
  await a.subscribe(ch);
  await b.subscribe(ch);
  const pch = uid('presence-counted-');
  const c = await raw(COUNT_APP.key);
  const d = await raw(COUNT_APP.key);
  const s = sdk(srv, COUNT_APP);
  await c.subscribe(pch, s.authorizeChannel(c.socketId, pch, { user_id: 'c' }));
  await d.subscribe(pch, s.authorizeChannel(d.socketId, pch, { user_id: 'd' }));
  // A first ping round: every join (and what it publishes) is done. A
  // second: whatever it published has arrived.
  for (const x of [a, b, c, d]) await x.ping();
  for (const x of [a, b, c, d]) await x.ping();
  for (const x of [a, b, c, d]) assert.equal(x.all((m) => m?.event === 'pusher_internal:subscription_count').length, 0, x.dump());
});

test('presence limits: a full channel refuses a new user (socket open), but not another connection of a member; oversized user_info refused', async () => {
  const s = sdk(srv, LIMITS_APP);
  const ch = uid('presence-full-');
  const join = async (userId, info) => {
    const c = await raw(LIMITS_APP.key);
    const a = s.authorizeChannel(c.socketId, ch, info === undefined ? { user_id: userId } : { user_id: userId, user_info: info });
    c.send({ event: 'pusher:subscribe', data: { channel: ch, ...a } });
    const m = await c.take((m) => (m?.event === 'pusher_internal:subscription_succeeded' && m.channel === ch) || m?.event === 'pusher:error', 3000, `reply to ${userId}`);
    return { c, m };
  };
  const a = await join('a');
  const b = await join('b');
  assert.equal(a.m.event, 'pusher_internal:subscription_succeeded');
  assert.equal(b.m.event, 'pusher_internal:subscription_succeeded');
  const third = await join('c');
  assert.equal(third.m.event, 'pusher:error', 'a third user is refused');
  assert.equal(dataOf(third.m).code, null);
  await third.c.ping();
  assert.equal(a.c.all((m) => m?.event === 'pusher_internal:member_added' && dataOf(m).user_id === 'c').length, 0, 'members never saw c');
  const again = await join('a');
  assert.equal(again.m.event, 'pusher_internal:subscription_succeeded', 'a second connection of a member is not a new member');
  assert.equal(JSON.parse(again.m.data).presence.count, 2);

  const ch2 = uid('presence-big-');
  const c = await raw(LIMITS_APP.key);
  const big = s.authorizeChannel(c.socketId, ch2, { user_id: 'big', user_info: { blob: 'x'.repeat(100) } });
  c.send({ event: 'pusher:subscribe', data: { channel: ch2, ...big } });
  const e = await c.expect('pusher:error');
  assert.equal(dataOf(e).code, null);
  await c.ping();
  assert.equal(c.all((m) => m?.event === 'pusher_internal:subscription_succeeded').length, 0);

  const ch3 = uid('presence-longid-');
  const d = await raw();
  d.send({ event: 'pusher:subscribe', data: { channel: ch3, ...sdk(srv).authorizeChannel(d.socketId, ch3, { user_id: 'u'.repeat(129) }) } });
  assert.equal(dataOf(await d.expect('pusher:error')).code, null, 'user ids over 128 characters are refused');
});

test('pusher-js subscribe/unsubscribe sequences (sub-unsub-sub, sub-unsub-wait-sub, sub-sub, unsub-unsub)', async () => {
  const s = sdk(srv);
  const p = pj();
  await connected(p);
  const got = {};
  const bindOnce = (name) => {
    got[name] = got[name] || [];
    const ch = p.channel(name);
    ch.unbind('probe');
    ch.bind('probe', (d) => got[name].push(d));
  };
  // sub-unsub-sub, without waiting in between.
  const a = uid('seq-a-');
  p.subscribe(a);
  p.unsubscribe(a);
  p.subscribe(a);
  bindOnce(a);
  await eventually(() => p.channel(a)?.subscribed, { label: `${a} subscribed` });
  // sub-unsub-wait-sub
  const b = uid('seq-b-');
  await subscribed(p, b);
  p.unsubscribe(b);
  await sleep(200);
  await subscribed(p, b);
  bindOnce(b);
  // sub-sub
  const c = uid('seq-c-');
  p.subscribe(c);
  p.subscribe(c);
  bindOnce(c);
  await eventually(() => p.channel(c)?.subscribed, { label: `${c} subscribed` });
  // sub-unsub-unsub: nothing afterwards
  const d = uid('seq-d-');
  await subscribed(p, d);
  p.unsubscribe(d);
  p.unsubscribe(d);
  await sleep(200);
  for (const name of [a, b, c, d]) await s.trigger(name, 'probe', { name });
  await eventually(() => got[a].length === 1 && got[b].length === 1 && got[c].length === 1, { label: 'one event on each subscribed channel' });
  await sleep(300);
  assert.deepEqual([got[a].length, got[b].length, got[c].length], [1, 1, 1], 'exactly once each');
  assert.equal(p.channel(d), undefined);
  const chans = await (await s.get({ path: '/channels', params: { filter_by_prefix: 'seq-d-' } })).json();
  assert.deepEqual(Object.keys(chans.channels).filter((n) => n === d), [], 'd is vacated');
});

test('ordering and fan-out: 40 subscribers each get 30 events in publish order', async () => {
  const s = sdk(srv);
  const ch = uid('fanout-');
  const subs = [];
  for (let i = 0; i < 40; i++) {
    const c = await raw();
    await c.subscribe(ch);
    subs.push(c);
  }
  for (let i = 0; i < 30; i++) await s.trigger(ch, 'seq', { i });
  await eventually(() => subs.every((c) => c.all((m) => m?.event === 'seq').length === 30), { timeout: 10000, label: 'all events everywhere' });
  for (const c of subs) {
    assert.deepEqual(
      c.all((m) => m?.event === 'seq').map((m) => JSON.parse(m.data).i),
      Array.from({ length: 30 }, (_, i) => i),
    );
  }
});

test('apps are isolated: same channel name, different apps', async () => {
  const ch = uid('shared-name-');
  const a = await raw();
  const b = await raw(COUNT_APP.key);
  await a.subscribe(ch);
  await b.subscribe(ch);
  await sdk(srv).trigger(ch, 'only-default-app', {});
  await a.expect('only-default-app', ch);
  assert.deepEqual(await b.quiet((m) => m?.event === 'only-default-app'), []);
  const list = await (await sdk(srv, TTL_APP).get({ path: '/channels', params: { filter_by_prefix: ch } })).json();
  assert.deepEqual(list, { channels: {} }, 'another app does not see the channel');
});
