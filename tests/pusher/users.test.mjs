// User sign-in, server-to-user messages, watchlists and
// terminate_connections (spec §1.11, §1.12, §2.7).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Clients, startServer, app, RawClient, sdk, pusherJs, connected, signedIn, subscribed, dataOf, uid, sleep, eventually } from './harness.mjs';

let srv;
const SMALLWL_APP = { id: 'wl-id', key: 'wl-key', secret: 'wl-secret' };
const clients = new Clients(() => srv);
const pj = (opts) => clients.pusher(opts);
const raw = (key) => clients.raw(key);
async function rawSignin(c, user, s = sdk(srv)) {
  const ud = s.authenticateUser(c.socketId, user);
  c.send({ event: 'pusher:signin', data: ud });
  const m = await c.take((m) => m?.event === 'pusher:signin_success' || m?.event === 'pusher:error', 3000, 'signin_success');
  assert.equal(m.event, 'pusher:signin_success', `signin refused: ${JSON.stringify(m)}`);
  return { msg: m, ud };
}

before(async () => {
  srv = await startServer({ apps: [app({ watchlist: true }), app({ ...SMALLWL_APP, watchlist: true, limits: { max_watchlist_size: 2 } })] });
});
after(async () => {
  clients.closeAll();
  await srv?.stop();
});

test('pusher:signin: signin_success echoes user_data exactly', async () => {
  const c = await raw();
  const user = { id: uid('user-'), user_info: { name: 'Zoë', tags: ['<a>', '&'] } };
  const { msg, ud } = await rawSignin(c, user);
  const d = dataOf(msg);
  assert.equal(d.user_data, ud.user_data, 'the same user_data string');
  assert.deepEqual(JSON.parse(d.user_data), user);
  await c.ping();
});

test('pusher:signin with a bad signature: pusher:error 4009 and close 4009', async () => {
  const c = await raw();
  c.send({ event: 'pusher:signin', data: { auth: 'app-key:' + 'f'.repeat(64), user_data: JSON.stringify({ id: 'mallory' }) } });
  const closed = await c.waitClose();
  assert.equal(closed.code, 4009);
  const errs = c.all((m) => m?.event === 'pusher:error');
  assert.equal(errs.length, 1, c.dump());
  assert.equal(dataOf(errs[0]).code, 4009);
  assert.equal(c.all((m) => m?.event === 'pusher:signin_success').length, 0);
});

test('signing in again as a different user is refused', async () => {
  const c = await raw();
  await rawSignin(c, { id: 'first-user' });
  const ud = sdk(srv).authenticateUser(c.socketId, { id: 'second-user' });
  c.send({ event: 'pusher:signin', data: ud });
  const m = await c.take((m) => m?.event === 'pusher:error' || m?.event === 'pusher:signin_success' || m === null, 3000, 'reply to 2nd signin');
  assert.equal(m.event, 'pusher:error', `second signin as another user: ${JSON.stringify(m)}`);
  // Still the first user: a message to first-user arrives, one to second-user does not.
  await sdk(srv).sendToUser('first-user', 'still-me', {});
  await sdk(srv).sendToUser('second-user', 'not-me', {});
  await c.expect('still-me');
  assert.deepEqual(await c.quiet((m) => m?.event === 'not-me'), []);
});

test('sendToUser reaches every connection of that user through pusher-js, and nobody else', async () => {
  const id = uid('u-');
  const a1 = pj({ user: { id, user_info: { n: 1 } } });
  const a2 = pj({ user: { id } });
  const other = pj({ user: { id: uid('other-') } });
  const anon = pj();
  await Promise.all([connected(a1), connected(a2), connected(other), connected(anon)]);
  assert.equal((await signedIn(a1)).id, id);
  await signedIn(a2);
  await signedIn(other);
  const got1 = [];
  const got2 = [];
  const gotOther = [];
  a1.user.bind('notice', (d) => got1.push(d));
  a2.user.bind('notice', (d) => got2.push(d));
  other.user.bind('notice', (d) => gotOther.push(d));
  // pusher-js subscribes to #server-to-user-<id> after signin; the server
  // confirms with subscription_succeeded.
  await eventually(() => [a1, a2, other].every((p) => p.user.serverToUserChannel?.subscribed), {
    label: "pusher-js's #server-to-user- subscriptions succeeded",
  });
  const r = await raw();
  await rawSignin(r, { id });
  const rOther = await raw(); // pusher-js drops other channels' events itself: check on the wire
  await rawSignin(rOther, { id: uid('raw-other-') });
  await sdk(srv).sendToUser(id, 'notice', { text: 'hello you' });
  await eventually(() => got1.length === 1 && got2.length === 1, { label: 'both connections of the user got it' });
  assert.deepEqual(got1[0], { text: 'hello you' });
  const f = await r.expect('notice');
  assert.deepEqual(f, { event: 'notice', channel: `#server-to-user-${id}`, data: '{"text":"hello you"}' });
  // The publish was queued before the HTTP answer; a pong comes after it.
  await r.ping();
  await rOther.ping();
  assert.deepEqual(rOther.all((m) => m?.event === 'notice'), [], `another user got nothing: ${rOther.dump()}`);
  assert.equal(gotOther.length, 0, 'another user got nothing (pusher-js)');
  assert.equal(got1.length, 1, 'delivered once per connection, not twice');
  assert.equal(r.all((m) => m?.event === 'notice').length, 1, 'once on the wire');
});

test("a client cannot subscribe to another user's #server-to-user- channel", async () => {
  const c = await raw();
  await rawSignin(c, { id: 'me-myself' });
  c.send({ event: 'pusher:subscribe', data: { channel: '#server-to-user-someone-else', auth: '' } });
  const e = await c.expect('pusher:error');
  assert.equal(dataOf(e).code, null);
  await sdk(srv).sendToUser('someone-else', 'private-mail', {});
  assert.deepEqual(await c.quiet((m) => m?.event === 'private-mail'), []);
  // Its own is fine (pusher-js asks for it after signin).
  c.send({ event: 'pusher:subscribe', data: { channel: '#server-to-user-me-myself', auth: '' } });
  await c.ping();
  const errs = c.all((m) => m?.event === 'pusher:error');
  assert.equal(errs.length, 1, `no error for subscribing to one's own channel: ${c.dump()}`);
});

test('watchlist through pusher-js: initial status, online when a watched user signs in, offline after their last connection', async () => {
  const wb = uid('wb-');
  const wc = uid('wc-');
  const watcher = pj({ user: { id: uid('watcher-'), watchlist: [wb, wc] } });
  const online = [];
  const offline = [];
  watcher.user.watchlist.bind('online', (e) => online.push(e));
  watcher.user.watchlist.bind('offline', (e) => offline.push(e));
  await connected(watcher);
  await signedIn(watcher);
  await eventually(() => offline.length === 1, { label: 'initial watchlist status' });
  assert.equal(offline[0].name, 'offline');
  assert.deepEqual([...offline[0].user_ids].sort(), [wb, wc].sort());
  assert.equal(online.length, 0);

  const b1 = pj({ user: { id: wb } });
  const b2 = pj({ user: { id: wb } });
  await connected(b1);
  await signedIn(b1);
  await eventually(() => online.length === 1, { label: 'online event' });
  assert.deepEqual(online[0], { name: 'online', user_ids: [wb] });
  await connected(b2);
  await signedIn(b2);
  await sleep(300);
  assert.equal(online.length, 1, 'a second connection of an online user is not a change');

  b1.disconnect();
  await sleep(500);
  assert.equal(offline.length, 1, 'still online on b2');
  b2.disconnect();
  await eventually(() => offline.length === 2, { timeout: 6000, label: 'offline event' });
  assert.deepEqual(offline[1], { name: 'offline', user_ids: [wb] });
});

test('watchlist wire shape: pusher_internal:watchlist_events with a JSON string {"events":[...]}', async () => {
  const target = uid('t-');
  const online = await raw();
  await rawSignin(online, { id: target });
  const c = await raw();
  await rawSignin(c, { id: uid('w-'), watchlist: [target, 'nobody-here'] });
  const f = await c.take((m) => m?.event === 'pusher_internal:watchlist_events', 3000, 'watchlist_events', { withRaw: true });
  assert.equal(typeof f.msg.data, 'string', f.raw);
  assert.equal(f.msg.channel, undefined);
  const d = JSON.parse(f.msg.data);
  assert.deepEqual(Object.keys(d), ['events']);
  const byName = Object.fromEntries(d.events.map((e) => [e.name, e.user_ids]));
  assert.deepEqual(byName, { online: [target], offline: ['nobody-here'] });
});

test('watchlist over max_watchlist_size: pusher:error 4302, first ids kept, signin succeeds, socket open', async () => {
  const s = sdk(srv, SMALLWL_APP);
  const [x, y, z] = [uid('x-'), uid('y-'), uid('z-')];
  const c = await raw(SMALLWL_APP.key);
  c.send({ event: 'pusher:signin', data: s.authenticateUser(c.socketId, { id: uid('big-'), watchlist: [x, y, z] }) });
  await c.expect('pusher:signin_success');
  const e = await c.expect('pusher:error');
  assert.equal(dataOf(e).code, 4302);
  const w = await c.expect('pusher_internal:watchlist_events');
  const ids = dataOf(w).events.flatMap((ev) => ev.user_ids);
  assert.deepEqual(ids.sort(), [x, y].sort(), 'only the first two are watched');
  // z coming online is not reported.
  const zc = await raw(SMALLWL_APP.key);
  await rawSignin(zc, { id: z }, s);
  assert.deepEqual(await c.quiet((m) => m?.event === 'pusher_internal:watchlist_events'), []);
  assert.ok(c.isOpen());
});

test('terminate_connections closes every signed-in connection of the user with 4009, and nothing else', async () => {
  const s = sdk(srv);
  const victim = uid('victim-');
  const v1 = await raw();
  const v2 = await raw();
  await rawSignin(v1, { id: victim });
  await rawSignin(v2, { id: victim });
  const keep = await raw();
  await rawSignin(keep, { id: uid('keep-') });
  // Same id, but only as a presence identity (not signed in): not terminated.
  const pres = await raw();
  const pch = uid('presence-term-');
  await pres.subscribe(pch, s.authorizeChannel(pres.socketId, pch, { user_id: victim }));
  const pjVictim = pj({ user: { id: victim } });
  await connected(pjVictim);
  await signedIn(pjVictim);
  const states = [];
  pjVictim.connection.bind('state_change', (st) => states.push(st.current));

  const res = await s.terminateUserConnections(victim);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {});
  for (const v of [v1, v2]) {
    const closed = await v.waitClose(5000);
    assert.equal(closed.code, 4009);
    const errs = v.all((m) => m?.event === 'pusher:error');
    assert.equal(errs.length, 1, `one pusher:error before the close: ${v.dump()}`);
    assert.equal(dataOf(errs[0]).code, 4009);
  }
  await eventually(() => pjVictim.connection.state !== 'connected', { label: 'pusher-js victim disconnected' });
  await sleep(1500);
  assert.notEqual(pjVictim.connection.state, 'connected', `pusher-js does not reconnect after 4009 (states ${states.join(',')})`);
  await keep.ping();
  await pres.ping();
  assert.ok(keep.isOpen() && pres.isOpen());
});
