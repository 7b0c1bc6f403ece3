// Laravel Echo 2.5.0 (broadcaster 'pusher', client = pusher-js 8.6.0)
// against the server, with Laravel-style event names and the `pusher` SDK
// as the Laravel backend stand-in.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, app, sdk, pusherJs, connected, uid, sleep, eventually, PusherServer } from './harness.mjs';

const { default: Echo } = await import('laravel-echo');

let srv;
let s;
const echos = [];

function echoFor(opts = {}) {
  const client = pusherJs(srv, opts);
  const echo = new Echo({ broadcaster: 'pusher', key: 'app-key', cluster: 'mt1', client, withoutInterceptors: true });
  echos.push(echo);
  return echo;
}

before(async () => {
  srv = await startServer({ apps: [app()] });
  s = sdk(srv);
});
after(async () => {
  for (const e of echos) {
    try {
      e.disconnect();
    } catch {}
  }
  await srv?.stop();
});

test('Echo.channel().listen(): namespaced Laravel event names and raw (.name) events', async () => {
  const name = uid('orders-');
  const echo = echoFor();
  await connected(echo.connector.pusher);
  const shipped = [];
  const rawEvs = [];
  let subscribedCalled = false;
  echo
    .channel(name)
    .subscribed(() => (subscribedCalled = true))
    .listen('OrderShipped', (e) => shipped.push(e))
    .listen('.raw-event', (e) => rawEvs.push(e));
  await eventually(() => subscribedCalled, { label: 'Echo subscribed()' });
  await s.trigger(name, 'App\\Events\\OrderShipped', { order: { id: 42 } });
  await s.trigger(name, 'raw-event', { ok: 1 });
  await eventually(() => shipped.length === 1 && rawEvs.length === 1, { label: 'both listeners fired' });
  assert.deepEqual(shipped[0], { order: { id: 42 } });
  assert.deepEqual(rawEvs[0], { ok: 1 });
  assert.match(echo.socketId(), /^\d+\.\d+$/);
  assert.equal(echo.connectionStatus(), 'connected');

  echo.leaveChannel(name);
  // pusher-js would drop later events itself: check that the server let go.
  await eventually(async () => !(await (await s.get({ path: `/channels/${name}` })).json()).occupied, { label: 'the server vacated the channel' });
  await s.trigger(name, 'App\\Events\\OrderShipped', { order: { id: 43 } });
  assert.equal(shipped.length, 1, 'nothing after leaveChannel');
});

test('Echo.private(): authorized subscription receives events', async () => {
  const name = uid('inbox-');
  const echo = echoFor();
  const got = [];
  let ok = false;
  echo
    .private(name)
    .subscribed(() => (ok = true))
    .listen('.MessageSent', (e) => got.push(e));
  await eventually(() => ok, { label: 'private subscribed' });
  await s.trigger(`private-${name}`, 'MessageSent', { text: 'hi' });
  await eventually(() => got.length === 1, { label: 'private event' });
  assert.deepEqual(got[0], { text: 'hi' });
});

test('Echo.join(): here / joining / leaving', async () => {
  const room = uid('room-');
  const alice = echoFor({ presence: () => ({ user_id: 1, user_info: { id: 1, name: 'Alice' } }) });
  const bob = echoFor({ presence: () => ({ user_id: 2, user_info: { id: 2, name: 'Bob' } }) });
  let hereA = null;
  const joining = [];
  const leaving = [];
  alice
    .join(room)
    .here((users) => (hereA = users))
    .joining((u) => joining.push(u))
    .leaving((u) => leaving.push(u));
  await eventually(() => hereA, { label: 'alice here()' });
  assert.deepEqual(hereA, [{ id: 1, name: 'Alice' }]);

  let hereB = null;
  bob.join(room).here((users) => (hereB = users));
  await eventually(() => hereB && joining.length === 1, { label: 'bob here() and alice joining()' });
  assert.deepEqual(
    [...hereB].sort((x, y) => x.id - y.id),
    [
      { id: 1, name: 'Alice' },
      { id: 2, name: 'Bob' },
    ],
  );
  assert.deepEqual(joining[0], { id: 2, name: 'Bob' });

  bob.leave(room);
  await eventually(() => leaving.length === 1, { label: 'alice leaving()' });
  assert.deepEqual(leaving[0], { id: 2, name: 'Bob' });
});

test('whisper / listenForWhisper: others get it, the sender does not', async () => {
  const room = uid('chat-');
  const a = echoFor({ presence: () => ({ user_id: 'a', user_info: { name: 'A' } }) });
  const b = echoFor({ presence: () => ({ user_id: 'b', user_info: { name: 'B' } }) });
  const gotA = [];
  const gotB = [];
  let readyA = false;
  let readyB = false;
  const chA = a.join(room).here(() => (readyA = true)).listenForWhisper('typing', (e) => gotA.push(e));
  b.join(room).here(() => (readyB = true)).listenForWhisper('typing', (e) => gotB.push(e));
  await eventually(() => readyA && readyB, { label: 'both joined' });
  chA.whisper('typing', { name: 'A', typing: true });
  await eventually(() => gotB.length === 1, { label: 'b got the whisper' });
  assert.deepEqual(gotB[0], { name: 'A', typing: true });
  await sleep(300);
  assert.equal(gotA.length, 0, 'no echo to the whisperer');

  // Private channel whisper too.
  const pname = uid('dm-');
  const pa = a.private(pname);
  const pb = b.private(pname);
  const dm = [];
  let sa = false;
  let sb = false;
  pa.subscribed(() => (sa = true));
  pb.subscribed(() => (sb = true)).listenForWhisper('read', (e) => dm.push(e));
  await eventually(() => sa && sb, { label: 'private subscribed' });
  pa.whisper('read', { upTo: 9 });
  await eventually(() => dm.length === 1, { label: 'private whisper' });
  assert.deepEqual(dm[0], { upTo: 9 });
});

test('.error() fires on a failed private authorization (bad signature), status 401', async () => {
  const wrong = new PusherServer({ appId: 'app-id', key: 'app-key', secret: 'wrong-secret', host: srv.host, port: String(srv.port), useTLS: false });
  const echo = echoFor({ authorize: ({ socketId, channelName }) => wrong.authorizeChannel(socketId, channelName) });
  const errors = [];
  let subscribedCalled = false;
  echo
    .private(uid('forbidden-'))
    .subscribed(() => (subscribedCalled = true))
    .error((e) => errors.push(e));
  await eventually(() => errors.length >= 1, { label: 'Echo .error()' });
  assert.equal(errors[0].status, 401, JSON.stringify(errors[0]));
  assert.equal(errors[0].type, 'AuthError');
  await sleep(200);
  assert.equal(subscribedCalled, false);
  assert.equal(echo.connectionStatus(), 'connected');
});

test('Echo.encryptedPrivate(): decrypted payloads', async () => {
  const name = uid('vault-');
  const echo = echoFor();
  const got = [];
  let ok = false;
  echo
    .encryptedPrivate(name)
    .subscribed(() => (ok = true))
    .listen('.Sealed', (e) => got.push(e));
  await eventually(() => ok, { label: 'encrypted subscribed' });
  await s.trigger(`private-encrypted-${name}`, 'Sealed', { secret: 'ssh' });
  await eventually(() => got.length === 1, { label: 'decrypted event' });
  assert.deepEqual(got[0], { secret: 'ssh' });
});
