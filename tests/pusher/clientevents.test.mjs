// Client events (spec §1.10): delivered to the other subscribers, never
// echoed, user_id on presence, refused on public channels, rate limited with
// 4301 while the socket stays open.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Clients, startServer, app, RawClient, sdk, pusherJs, connected, subscribed, record, dataOf, uid, sleep, eventually } from './harness.mjs';

let srv;
const NOCE_APP = { id: 'noce-id', key: 'noce-key', secret: 'noce-secret' };
const clients = new Clients(() => srv);
const pj = (opts) => clients.pusher(opts);
const raw = (key) => clients.raw(key);

before(async () => {
  srv = await startServer({
    apps: [app({ limits: { client_events_per_second: 10 } }), app({ ...NOCE_APP, client_events: false })],
  });
});
after(async () => {
  clients.closeAll();
  await srv?.stop();
});

test('private channel: received by the others, not echoed to the sender', async () => {
  const ch = uid('private-chat-');
  const a = pj();
  const b = pj();
  const c = pj();
  await Promise.all([connected(a), connected(b), connected(c)]);
  const [{ channel: ca }, { channel: cb }, { channel: cc }] = await Promise.all([subscribed(a, ch), subscribed(b, ch), subscribed(c, ch)]);
  const ea = record(ca);
  const eb = record(cb);
  const ec = record(cc);
  const metas = [];
  cb.bind('client-typing', (_d, metadata) => metas.push(metadata));
  assert.equal(ca.trigger('client-typing', { who: 'a', text: 'hé <3' }), true);
  await eventually(() => eb.length === 1 && ec.length === 1, { label: 'b and c got the client event' });
  for (const e of [eb[0], ec[0]]) {
    assert.equal(e.event, 'client-typing');
    assert.deepEqual(e.data, { who: 'a', text: 'hé <3' });
  }
  assert.equal(metas.length, 1);
  assert.equal(metas[0]?.user_id, undefined, 'no user_id on private channels');
  await sleep(300);
  assert.equal(ea.length, 0, 'the sender does not get its own event');
});

test('private channel raw: exact frame forwarded (data as the client sent it), no user_id', async () => {
  const s = sdk(srv);
  const ch = uid('private-raw-');
  const a = await raw();
  const b = await raw();
  await a.subscribe(ch, s.authorizeChannel(a.socketId, ch));
  await b.subscribe(ch, s.authorizeChannel(b.socketId, ch));
  a.send({ event: 'client-obj', channel: ch, data: { x: 1 } });
  a.send({ event: 'client-str', channel: ch, data: 'a string' });
  const o = await b.expect('client-obj', ch);
  assert.deepEqual(o, { event: 'client-obj', channel: ch, data: { x: 1 } });
  const st = await b.expect('client-str', ch);
  assert.deepEqual(st, { event: 'client-str', channel: ch, data: 'a string' });
  await a.ping();
  assert.equal(a.all((m) => m?.event?.startsWith('client-')).length, 0, 'not echoed');
});

test('presence channel: client events carry the sender user_id', async () => {
  const ch = uid('presence-chat-');
  const a = pj({ presence: () => ({ user_id: 'alice', user_info: { n: 'A' } }) });
  const b = pj({ presence: () => ({ user_id: 'bob' }) });
  await Promise.all([connected(a), connected(b)]);
  const { channel: ca } = await subscribed(a, ch);
  const { channel: cb } = await subscribed(b, ch);
  const ea = record(ca);
  const eb = record(cb);
  const metas = [];
  cb.bind('client-hello', (data, metadata) => metas.push({ data, metadata }));
  ca.trigger('client-hello', { hi: true });
  await eventually(() => metas.length === 1, { label: 'client event on presence' });
  assert.deepEqual(metas[0].data, { hi: true });
  assert.equal(metas[0].metadata.user_id, 'alice', 'pusher-js metadata.user_id');
  await sleep(300);
  assert.equal(ea.filter((e) => e.event === 'client-hello').length, 0);

  const r = await raw();
  await r.subscribe(ch, sdk(srv).authorizeChannel(r.socketId, ch, { user_id: 'carol' }));
  ca.trigger('client-again', { n: 2 });
  const f = await r.expect('client-again', ch);
  assert.equal(f.user_id, 'alice');
  assert.deepEqual(f.data, { n: 2 });
});

test('public channel: client event rejected with pusher:error, not delivered', async () => {
  const ch = uid('public-ce-');
  const a = await raw();
  const b = await raw();
  await a.subscribe(ch);
  await b.subscribe(ch);
  a.send({ event: 'client-nope', channel: ch, data: {} });
  const e = await a.expect('pusher:error');
  const d = dataOf(e);
  assert.equal(d.code, null);
  assert.match(d.message, /private and presence/i);
  await a.ping();
  const leaked = await b.quiet((m) => m?.event === 'client-nope');
  assert.deepEqual(leaked, []);
});

test('client events: refused when not subscribed, when the name lacks client-, and when the app disables them', async () => {
  const s = sdk(srv);
  const ch = uid('private-ns-');
  const a = await raw();
  const b = await raw();
  await b.subscribe(ch, s.authorizeChannel(b.socketId, ch));
  a.send({ event: 'client-sneaky', channel: ch, data: {} });
  assert.equal(dataOf(await a.expect('pusher:error')).code, null);
  a.send({ event: 'not-client', channel: ch, data: {} });
  assert.equal(dataOf(await a.expect('pusher:error')).code, null);
  await a.ping();
  assert.deepEqual(await b.quiet((m) => m?.event === 'client-sneaky' || m?.event === 'not-client'), []);

  const sn = sdk(srv, NOCE_APP);
  const x = await raw(NOCE_APP.key);
  const y = await raw(NOCE_APP.key);
  const nch = uid('private-off-');
  await x.subscribe(nch, sn.authorizeChannel(x.socketId, nch));
  await y.subscribe(nch, sn.authorizeChannel(y.socketId, nch));
  x.send({ event: 'client-off', channel: nch, data: {} });
  assert.equal(dataOf(await x.expect('pusher:error')).code, null);
  await x.ping();
  assert.deepEqual(await y.quiet((m) => m?.event === 'client-off'), []);
});

test('rate limit: over client_events_per_second the sender gets pusher:error 4301, the socket stays open', async () => {
  const s = sdk(srv);
  const ch = uid('private-flood-');
  const a = await raw();
  const b = await raw();
  await a.subscribe(ch, s.authorizeChannel(a.socketId, ch));
  await b.subscribe(ch, s.authorizeChannel(b.socketId, ch));
  for (let i = 0; i < 30; i++) a.send({ event: 'client-flood', channel: ch, data: { i } });
  const e = await a.expect('pusher:error');
  assert.equal(dataOf(e).code, 4301, `rate limit error: ${JSON.stringify(e)}`);
  await a.ping(); // every flood event was handled: published, or refused to a
  assert.ok(a.isOpen(), 'socket stays open');
  const rejected = a.all((m) => m?.event === 'pusher:error' && dataOf(m).code === 4301).length;
  // On one node the allowed ones are queued to b by now; on a cluster b
  // may be on another node, which hears them through the engine in its
  // own time, so wait (bounded) for them rather than for a ping of b's.
  const flood = () => b.all((m) => m?.event === 'client-flood').length;
  await eventually(() => flood() + rejected >= 30, { label: 'the allowed flood events at b' });
  await b.ping(); // and nothing more behind them
  const delivered = flood();
  assert.ok(delivered >= 10 && delivered <= 13, `about 10 delivered in the burst (got ${delivered})`);
  assert.equal(delivered + rejected, 30, `every event is either delivered or rejected (${delivered} + ${rejected})`);

  // The budget refills.
  await sleep(1200);
  a.send({ event: 'client-after', channel: ch, data: {} });
  await b.expect('client-after', ch);
  assert.equal(a.closeInfo, null);
});

test('client events: data over 10 KB and names over 200 characters are refused, not delivered', async () => {
  const s = sdk(srv);
  const ch = uid('private-big-');
  const a = await raw();
  const b = await raw();
  await a.subscribe(ch, s.authorizeChannel(a.socketId, ch));
  await b.subscribe(ch, s.authorizeChannel(b.socketId, ch));
  a.send({ event: 'client-big', channel: ch, data: 'x'.repeat(10300) });
  assert.equal(dataOf(await a.expect('pusher:error')).code, null);
  a.send({ event: 'client-' + 'n'.repeat(200), channel: ch, data: {} });
  assert.equal(dataOf(await a.expect('pusher:error')).code, null);
  a.send({ event: 'client-fits', channel: ch, data: 'x'.repeat(9000) });
  await b.expect('client-fits', ch);
  await a.ping();
  assert.equal(b.all((m) => m?.event === 'client-big' || m?.event?.startsWith('client-nnn')).length, 0);
});
