// The HTTP API (spec §2) through the official `pusher` SDK 5.3.4, and raw
// signed requests for the error statuses.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Clients, startServer, app, RawClient, sdk, signQuery, rawRequest, dataOf, uid, sleep, DEFAULT_APP } from './harness.mjs';

let srv;
let s;
const clients = new Clients(() => srv);
const raw = (key) => clients.raw(key);
async function presenceMember(ch, userId) {
  const c = await raw();
  await c.subscribe(ch, s.authorizeChannel(c.socketId, ch, { user_id: userId, user_info: { n: userId } }));
  return c;
}
async function json(res) {
  assert.equal(res.status, 200);
  return res.json();
}

before(async () => {
  srv = await startServer({ apps: [app(), app({ id: 'off-id', key: 'off-key', secret: 'off-secret', enabled: false })] });
  s = sdk(srv);
});
after(async () => {
  clients.closeAll();
  await srv?.stop();
});

test('our raw signer reproduces the documented worked example (self-check)', () => {
  const body = '{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}';
  const r = signQuery({ method: 'POST', path: '/apps/3/events', body, key: '278d425bdf160c739803', secret: '7ad3773142a6692b25b8', timestamp: 1353088179 });
  assert.equal(r.params.body_md5, 'ec365a775a4cd0599faeb73354201b6f');
  assert.equal(r.toSign, 'POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f');
  assert.equal(r.signature, 'da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c');
});

test('trigger to one channel: 200 {} and delivered', async () => {
  const ch = uid('rest-one-');
  const c = await raw();
  await c.subscribe(ch);
  const res = await s.trigger(ch, 'evt', { a: 1 });
  assert.deepEqual(await json(res), {});
  assert.deepEqual(await c.expect('evt', ch), { event: 'evt', channel: ch, data: '{"a":1}' });
});

test('trigger to several channels with socket_id exclusion', async () => {
  const ch1 = uid('rest-m1-');
  const ch2 = uid('rest-m2-');
  const a = await raw();
  const b = await raw();
  const c = await raw();
  await a.subscribe(ch1);
  await a.subscribe(ch2);
  await b.subscribe(ch1);
  await c.subscribe(ch2);
  const res = await s.trigger([ch1, ch2], 'multi', { m: true }, { socket_id: a.socketId });
  assert.deepEqual(await json(res), {});
  assert.deepEqual(await b.expect('multi', ch1), { event: 'multi', channel: ch1, data: '{"m":true}' });
  assert.deepEqual(await c.expect('multi', ch2), { event: 'multi', channel: ch2, data: '{"m":true}' });
  assert.deepEqual(await a.quiet((m) => m?.event === 'multi'), [], 'the excluded socket gets it on neither channel');
  assert.equal(b.all((m) => m?.event === 'multi').length, 1);
  // Without exclusion a gets it on both channels.
  await s.trigger([ch1, ch2], 'multi2', {});
  await a.expect('multi2', ch1);
  await a.expect('multi2', ch2);
});

test('trigger with info=user_count,subscription_count', async () => {
  const p = uid('presence-info-');
  const pub = uid('public-info-');
  await presenceMember(p, 'u1');
  await presenceMember(p, 'u2');
  await presenceMember(p, 'u2');
  const x = await raw();
  const y = await raw();
  await x.subscribe(pub);
  await y.subscribe(pub);
  const r1 = await json(await s.trigger(p, 'e', {}, { info: 'user_count' }));
  assert.deepEqual(r1, { channels: { [p]: { user_count: 2 } } });
  const r2 = await json(await s.trigger(pub, 'e', {}, { info: 'subscription_count' }));
  assert.deepEqual(r2, { channels: { [pub]: { subscription_count: 2 } } });
  const r3 = await json(await s.trigger([p, pub], 'e', {}, { info: 'user_count' }));
  assert.deepEqual(r3, { channels: { [p]: { user_count: 2 }, [pub]: {} } }, 'attributes a channel type lacks are left out');
});

test('info=subscription_count applies to presence channels too (upstream HTTP API reference: "Applicable channels: All")', async () => {
  const p = uid('presence-subcount-');
  await presenceMember(p, 'u1');
  await presenceMember(p, 'u2');
  await presenceMember(p, 'u2');
  const pub = uid('public-subcount-');
  const x = await raw();
  await x.subscribe(pub);
  const t = await json(await s.trigger([p, pub], 'e', {}, { info: 'user_count,subscription_count' }));
  assert.deepEqual(t, { channels: { [p]: { user_count: 2, subscription_count: 3 }, [pub]: { subscription_count: 1 } } }, 'POST /events');
  const b = await json(await s.triggerBatch([{ channel: p, name: 'e', data: '{}', info: 'user_count,subscription_count' }]));
  assert.deepEqual(b, { batch: [{ user_count: 2, subscription_count: 3 }] }, 'POST /batch_events');
  const g = await json(await s.get({ path: `/channels/${p}`, params: { info: 'user_count,subscription_count' } }));
  assert.deepEqual(g, { occupied: true, user_count: 2, subscription_count: 3 }, 'GET /channels/{name}');
});

test('triggerBatch: every event delivered to its channel, socket_id honoured; info per event', async () => {
  const ch1 = uid('batch-1-');
  const ch2 = uid('batch-2-');
  const p = uid('presence-batch-');
  const a = await raw();
  const b = await raw();
  await a.subscribe(ch1);
  await b.subscribe(ch1);
  await b.subscribe(ch2);
  await presenceMember(p, 'pm');
  const res = await s.triggerBatch([
    { channel: ch1, name: 'b1', data: JSON.stringify({ i: 1 }) },
    { channel: ch2, name: 'b2', data: JSON.stringify({ i: 2 }) },
    { channel: ch1, name: 'b3', data: JSON.stringify({ i: 3 }), socket_id: a.socketId },
  ]);
  assert.deepEqual(await json(res), {});
  assert.equal((await a.expect('b1', ch1)).data, '{"i":1}');
  assert.equal((await b.expect('b1', ch1)).data, '{"i":1}');
  assert.equal((await b.expect('b2', ch2)).data, '{"i":2}');
  assert.equal((await b.expect('b3', ch1)).data, '{"i":3}');
  assert.deepEqual(await a.quiet((m) => m?.event === 'b3' || m?.event === 'b2'), []);

  const withInfo = await json(
    await s.triggerBatch([
      { channel: p, name: 'i1', data: '{}', info: 'user_count' },
      { channel: ch2, name: 'i2', data: '{}' },
      { channel: ch1, name: 'i3', data: '{}', info: 'subscription_count' },
    ]),
  );
  assert.deepEqual(withInfo, { batch: [{ user_count: 1 }, {}, { subscription_count: 2 }] });
});

test('GET /channels: occupied channels, filter_by_prefix, info=user_count', async () => {
  const tag = uid('q');
  const pub = `${tag}-pub`;
  const pres = `presence-${tag}-room`;
  const c = await raw();
  await c.subscribe(pub);
  await presenceMember(pres, 'a');
  await presenceMember(pres, 'b');

  const all = await json(await s.get({ path: '/channels' }));
  assert.deepEqual(all.channels[pub], {});
  assert.deepEqual(all.channels[pres], {});
  const filtered = await json(await s.get({ path: '/channels', params: { filter_by_prefix: tag } }));
  assert.deepEqual(filtered, { channels: { [pub]: {} } });
  const pf = await json(await s.get({ path: '/channels', params: { filter_by_prefix: `presence-${tag}`, info: 'user_count' } }));
  assert.deepEqual(pf, { channels: { [pres]: { user_count: 2 } } });
  const none = await json(await s.get({ path: '/channels', params: { filter_by_prefix: uid('nothing-') } }));
  assert.deepEqual(none, { channels: {} });

  // user_count is only allowed with a presence- prefix filter.
  const bad = await s.get({ path: '/channels', params: { info: 'user_count' } }).catch((e) => e);
  assert.equal(bad.status, 400);

  // Vacated channels disappear.
  c.unsubscribe(pub);
  await c.ping();
  const after = await json(await s.get({ path: '/channels', params: { filter_by_prefix: tag } }));
  assert.deepEqual(after, { channels: {} });
});

test('GET /channels/{name}: occupied, user_count, subscription_count, cache; 400 for attributes the type lacks', async () => {
  const pub = uid('one-');
  const pres = uid('presence-one-');
  const cache = uid('cache-one-');
  const a = await raw();
  const b = await raw();
  await a.subscribe(pub);
  await b.subscribe(pub);
  await presenceMember(pres, 'x');
  await presenceMember(pres, 'x');
  await presenceMember(pres, 'y');

  assert.deepEqual(await json(await s.get({ path: `/channels/${pub}` })), { occupied: true });
  assert.deepEqual(await json(await s.get({ path: `/channels/${pub}`, params: { info: 'subscription_count' } })), { occupied: true, subscription_count: 2 });
  assert.deepEqual(await json(await s.get({ path: `/channels/${pres}`, params: { info: 'user_count' } })), { occupied: true, user_count: 2 });

  assert.deepEqual(await json(await s.get({ path: `/channels/${uid('empty-')}` })), { occupied: false });
  const bad = await s.get({ path: `/channels/${pub}`, params: { info: 'user_count' } }).catch((e) => e);
  assert.equal(bad.status, 400, 'user_count on a non-presence channel');

  await s.trigger(cache, 'cached', { v: 7 });
  const ci = await json(await s.get({ path: `/channels/${cache}`, params: { info: 'cache' } }));
  assert.equal(ci.occupied, false);
  assert.equal(typeof ci.cache, 'object');
  assert.ok(ci.cache, `cache info present: ${JSON.stringify(ci)}`);
  assert.equal(typeof ci.cache.data, 'string');
  assert.ok(ci.cache.data.includes('{\\"v\\":7}') || ci.cache.data.includes('{"v":7}'), `cache.data carries the event: ${JSON.stringify(ci)}`);
  assert.ok(typeof ci.cache.ttl === 'number' && ci.cache.ttl > 0 && ci.cache.ttl <= 1800, `ttl in seconds: ${ci.cache.ttl}`);
});

test('GET /channels/{name}/users: presence ids; 400 for other channels', async () => {
  const pres = uid('presence-users-');
  await presenceMember(pres, '1');
  await presenceMember(pres, '2');
  await presenceMember(pres, '2');
  const r = await json(await s.get({ path: `/channels/${pres}/users` }));
  assert.deepEqual(Object.keys(r), ['users']);
  assert.deepEqual(r.users.map((u) => u.id).sort(), ['1', '2']);
  for (const u of r.users) assert.deepEqual(Object.keys(u), ['id']);
  const bad = await s.get({ path: `/channels/${uid('public-')}/users` }).catch((e) => e);
  assert.equal(bad.status, 400);
});

test('terminateUserConnections and sendToUser answer {}', async () => {
  assert.deepEqual(await json(await s.terminateUserConnections(uid('nobody-'))), {});
  assert.deepEqual(await json(await s.sendToUser(uid('nobody-'), 'evt', { x: 1 })), {});
});

test('raw signed request: a correct one works (200)', async () => {
  const ch = uid('rawok-');
  const c = await raw();
  await c.subscribe(ch);
  const r = await rawRequest(srv, { method: 'POST', path: '/apps/app-id/events', body: { name: 'raw', channel: ch, data: 'hi' } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, {});
  assert.deepEqual(await c.expect('raw', ch), { event: 'raw', channel: ch, data: 'hi' });
  const g = await rawRequest(srv, { path: '/apps/app-id/channels', params: { filter_by_prefix: ch } });
  assert.equal(g.status, 200, g.text);
  assert.deepEqual(g.json, { channels: { [ch]: {} } });
});

test('raw: stale or future auth_timestamp (> 600 s) is 401; within the window is fine', async () => {
  const now = Math.floor(Date.now() / 1000);
  const body = { name: 'x', channel: 'c', data: '{}' };
  for (const ts of [now - 700, now + 700]) {
    const r = await rawRequest(srv, { method: 'POST', path: '/apps/app-id/events', body, timestamp: ts });
    assert.equal(r.status, 401, `timestamp ${ts - now}s: ${r.text}`);
  }
  const ok = await rawRequest(srv, { method: 'POST', path: '/apps/app-id/events', body, timestamp: now - 500 });
  assert.equal(ok.status, 200, ok.text);
});

test('raw: bad signature, wrong key, wrong body_md5, missing auth params are 401', async () => {
  const body = { name: 'x', channel: 'c', data: '{}' };
  const cases = {
    'bad signature': (q) => (q.auth_signature = '0'.repeat(64)),
    'wrong auth_key': (q) => (q.auth_key = 'not-the-key'),
    'wrong body_md5': (q) => (q.body_md5 = 'd41d8cd98f00b204e9800998ecf8427e'),
    'no signature': (q) => delete q.auth_signature,
    'no auth_key': (q) => delete q.auth_key,
    'no timestamp': (q) => delete q.auth_timestamp,
  };
  for (const [name, mutate] of Object.entries(cases)) {
    const r = await rawRequest(srv, { method: 'POST', path: '/apps/app-id/events', body, mutate });
    assert.equal(r.status, 401, `${name}: ${r.status} ${r.text}`);
  }
  const g = await rawRequest(srv, { path: '/apps/app-id/channels', mutate: (q) => (q.auth_signature = 'f'.repeat(64)) });
  assert.equal(g.status, 401);
  // Signed with another app's secret.
  const other = await rawRequest(srv, { method: 'POST', path: '/apps/app-id/events', body, app: { ...DEFAULT_APP, secret: 'wrong' } });
  assert.equal(other.status, 401);
});

test('raw: unknown app id is 404', async () => {
  const r = await rawRequest(srv, { method: 'POST', path: '/apps/no-such-app/events', body: { name: 'x', channel: 'c', data: '{}' }, app: { id: 'no-such-app', key: 'k', secret: 's' } });
  assert.equal(r.status, 404, r.text);
  const g = await rawRequest(srv, { path: '/apps/no-such-app/channels', app: { id: 'no-such-app', key: 'k', secret: 's' } });
  assert.equal(g.status, 404);
});

test('raw: disabled app is 403 for a correctly signed request', async () => {
  const a = { id: 'off-id', key: 'off-key', secret: 'off-secret' };
  const r = await rawRequest(srv, { method: 'POST', path: '/apps/off-id/events', body: { name: 'x', channel: 'c', data: '{}' }, app: a });
  assert.equal(r.status, 403, r.text);
});

test('raw: event data over 10 KB is 413; exactly 10 KB is fine', async () => {
  const ok = await rawRequest(srv, { method: 'POST', path: '/apps/app-id/events', body: { name: 'big', channel: 'c', data: 'x'.repeat(10240) } });
  assert.equal(ok.status, 200, ok.text);
  const r = await rawRequest(srv, { method: 'POST', path: '/apps/app-id/events', body: { name: 'big', channel: 'c', data: 'x'.repeat(10241) } });
  assert.equal(r.status, 413, r.text);
  const b = await rawRequest(srv, { method: 'POST', path: '/apps/app-id/batch_events', body: { batch: [{ name: 'big', channel: 'c', data: 'x'.repeat(10241) }] } });
  assert.equal(b.status, 413, b.text);
});

test('raw: bad requests are 400 (channel name, too many channels, batch size, missing fields, name length)', async () => {
  const cases = {
    'bad channel name': { name: 'x', channel: 'bad name!', data: '{}' },
    'reserved # channel': { name: 'x', channel: '#nope', data: '{}' },
    'channel name 201 chars': { name: 'x', channel: 'c'.repeat(201), data: '{}' },
    '101 channels': { name: 'x', channels: Array.from({ length: 101 }, (_, i) => `c${i}`), data: '{}' },
    'no channel': { name: 'x', data: '{}' },
    'no name': { channel: 'c', data: '{}' },
    'no data': { name: 'x', channel: 'c' },
    'event name 201 chars': { name: 'e'.repeat(201), channel: 'c', data: '{}' },
    'bad socket_id': { name: 'x', channel: 'c', data: '{}', socket_id: 'abc' },
    'not JSON': 'this is not json',
  };
  for (const [name, body] of Object.entries(cases)) {
    const r = await rawRequest(srv, { method: 'POST', path: '/apps/app-id/events', body });
    assert.equal(r.status, 400, `${name}: ${r.status} ${r.text}`);
  }
  const big = Array.from({ length: 11 }, (_, i) => ({ name: 'x', channel: `c${i}`, data: '{}' }));
  const r = await rawRequest(srv, { method: 'POST', path: '/apps/app-id/batch_events', body: { batch: big } });
  assert.equal(r.status, 400, `batch of 11: ${r.text}`);
  const okBatch = await rawRequest(srv, { method: 'POST', path: '/apps/app-id/batch_events', body: { batch: big.slice(0, 10) } });
  assert.equal(okBatch.status, 200, okBatch.text);
  const ch100 = await rawRequest(srv, { method: 'POST', path: '/apps/app-id/events', body: { name: 'x', channels: Array.from({ length: 100 }, (_, i) => `c${i}`), data: '{}' } });
  assert.equal(ch100.status, 200, `100 channels is the limit, allowed: ${ch100.text}`);
});

test('error bodies are JSON-ish text the SDK surfaces; the server is still healthy', async () => {
  const r = await rawRequest(srv, { method: 'POST', path: '/apps/app-id/events', body: { name: 'x', channel: 'bad name!', data: '{}' } });
  assert.ok(r.text.length > 0, 'an explanation in the body');
  const h = await fetch(`${srv.httpURL}/healthz`);
  assert.equal(h.status, 200);
});

test('POST /events parameters in the query string (upstream: "MAY be submitted in the query string")', async () => {
  const ch = uid('qs-');
  const c = await raw();
  await c.subscribe(ch);
  const r = await rawRequest(srv, { method: 'POST', path: '/apps/app-id/events', params: { name: 'via-query', channel: ch, data: '{"q":1}' } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(await c.expect('via-query', ch), { event: 'via-query', channel: ch, data: '{"q":1}' });
});

test('no leaks: an abruptly dropped connection (no close frame) leaves its channels and presence', async () => {
  const tag = uid('leak');
  const pub = `${tag}-pub`;
  const pres = `presence-${tag}`;
  const c = await RawClient.connect(srv.wsURL());
  await c.subscribe(pub);
  await c.subscribe(pres, s.authorizeChannel(c.socketId, pres, { user_id: 'leaky' }));
  const watcher = await presenceMember(pres, 'watcher');
  const before = await json(await s.get({ path: '/channels', params: { filter_by_prefix: tag } }));
  assert.deepEqual(Object.keys(before.channels).sort(), [pub]);
  c.terminate(); // TCP close without a WebSocket close handshake
  const removed = await watcher.expect('pusher_internal:member_removed', pres, 5000);
  assert.deepEqual(JSON.parse(removed.data), { user_id: 'leaky' });
  let chans;
  for (let i = 0; i < 100; i++) {
    chans = await json(await s.get({ path: '/channels', params: { filter_by_prefix: tag } }));
    if (!chans.channels[pub]) break;
    await sleep(50);
  }
  assert.deepEqual(chans, { channels: {} });
  const users = await json(await s.get({ path: `/channels/${pres}/users` }));
  assert.deepEqual(users, { users: [{ id: 'watcher' }] });
});
