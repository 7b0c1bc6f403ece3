// Liveness (spec §1.4: pusher:ping, control pings, 4201) and the
// authorized-connections timeout (spec §1.11: 4009), with short timeouts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SCALE, startServer, app, RawClient, sdk, dataOf, uid, sleep, eventually, pusherJs, connected, signedIn } from './harness.mjs';

let srv;
const AUTH_APP = { id: 'auth-id', key: 'auth-key', secret: 'auth-secret' };

before(async () => {
  srv = await startServer({
    pusher: { activity_timeout: '1s', pong_timeout: '1s' },
    apps: [app(), app({ ...AUTH_APP, user_authentication: true, auth_timeout: '1s' })],
  });
});
after(async () => {
  await srv?.stop();
});

test('activity_timeout in connection_established follows the config (1 s)', async () => {
  const c = await RawClient.connect(srv.wsURL());
  assert.equal(c.activityTimeout, 1);
  c.close();
});

test('silent client (answers neither pusher:ping nor control pings): pusher:ping, then close 4201', async () => {
  const c = await RawClient.connect(srv.wsURL(), { autoPong: false });
  const t0 = Date.now();
  const ping = await c.take((m) => m?.event === 'pusher:ping', 4000, 'server pusher:ping', { withRaw: true });
  assert.equal(typeof ping.msg.data, 'string', `pusher:ping data is a JSON string: ${ping.raw}`);
  assert.deepEqual(JSON.parse(ping.msg.data), {});
  const closed = await c.waitClose(6000);
  const elapsed = Date.now() - t0;
  assert.equal(closed.code, 4201, `close code (reason ${JSON.stringify(closed.reason)})`);
  assert.ok(elapsed >= 1500, `closed only after activity_timeout + pong_timeout (took ${elapsed} ms)`);
  assert.ok(elapsed < 6000 * SCALE, `closed in time (took ${elapsed} ms)`);
});

test('client answering pusher:ping with pusher:pong stays connected', async () => {
  const c = await RawClient.connect(srv.wsURL(), { autoPong: false });
  c.ws.on('message', (d) => {
    try {
      if (JSON.parse(d.toString()).event === 'pusher:ping') c.send({ event: 'pusher:pong', data: {} });
    } catch {}
  });
  await sleep(4500);
  assert.ok(c.isOpen(), `still open; frames: ${c.dump()}`);
  assert.ok(c.all((m) => m?.event === 'pusher:ping').length >= 2, 'server pinged while idle');
  assert.equal(c.all((m) => m?.event === 'pusher:error').length, 0);
  c.close();
});

test('client answering only WebSocket control pings stays connected', async () => {
  const c = await RawClient.connect(srv.wsURL()); // ws answers control pings automatically
  await sleep(4500);
  assert.ok(c.isOpen(), `still open; frames: ${c.dump()}`);
  assert.ok(c.pings >= 1, 'the server sent control pings');
  c.close();
});

test('a busy client is not pinged (any message is proof of life)', async () => {
  const c = await RawClient.connect(srv.wsURL(), { autoPong: false });
  const iv = setInterval(() => c.send({ event: 'pusher:ping', data: {} }), 300);
  try {
    await sleep(3000);
    assert.ok(c.isOpen());
    assert.equal(c.all((m) => m?.event === 'pusher:ping').length, 0, `no server ping while the client talks; frames: ${c.dump()}`);
  } finally {
    clearInterval(iv);
    c.close();
  }
});

test('pusher-js stays connected through several activity timeouts', async () => {
  const p = pusherJs(srv);
  try {
    await connected(p);
    const id = p.connection.socket_id;
    const states = [];
    p.connection.bind('state_change', (s) => states.push(s.current));
    await sleep(4000);
    assert.equal(p.connection.state, 'connected');
    assert.equal(p.connection.socket_id, id, `same connection (states: ${states.join(',')})`);
  } finally {
    p.disconnect();
  }
});

test('user_authentication app: an unauthenticated connection gets pusher:error 4009 and close 4009 after auth_timeout', async () => {
  const c = await RawClient.connect(srv.wsURL(AUTH_APP.key));
  const t0 = Date.now();
  await c.subscribe(uid('public-')); // a public channel does not count
  const closed = await c.waitClose(5000);
  const elapsed = Date.now() - t0;
  assert.equal(closed.code, 4009);
  const errs = c.all((m) => m?.event === 'pusher:error');
  assert.equal(errs.length, 1, `one pusher:error; frames: ${c.dump()}`);
  assert.equal(dataOf(errs[0]).code, 4009);
  assert.ok(elapsed >= 700, `not before auth_timeout (${elapsed} ms)`);
});

test('user_authentication app: signing in (or a private subscription) in time keeps the connection', async () => {
  const s = sdk(srv, AUTH_APP);
  const a = await RawClient.connect(srv.wsURL(AUTH_APP.key));
  const b = await RawClient.connect(srv.wsURL(AUTH_APP.key));
  try {
    const ud = s.authenticateUser(a.socketId, { id: 'alice' });
    a.send({ event: 'pusher:signin', data: ud });
    await a.expect('pusher:signin_success');
    const ch = uid('private-auth-');
    await b.subscribe(ch, s.authorizeChannel(b.socketId, ch));
    await sleep(2500); // past auth_timeout (1 s)
    await a.ping();
    await b.ping();
    assert.ok(a.isOpen(), `signed-in connection stays: ${a.dump()}`);
    assert.ok(b.isOpen(), `privately subscribed connection stays: ${b.dump()}`);
    assert.deepEqual([...a.all((m) => m?.event === 'pusher:error'), ...b.all((m) => m?.event === 'pusher:error')], [], 'no 4009 warning');
  } finally {
    a.close();
    b.close();
  }
});

test('user_authentication app: pusher-js signin keeps the connection; without signin pusher-js is refused (4009, no reconnect)', async () => {
  const good = pusherJs(srv, { app: AUTH_APP, user: { id: 'bob' } });
  const bad = pusherJs(srv, { app: AUTH_APP });
  try {
    const errors = [];
    bad.connection.bind('error', (e) => errors.push(e));
    const goodErrors = [];
    good.connection.bind('error', (e) => goodErrors.push(e));
    await connected(good);
    const goodId = good.connection.socket_id;
    assert.deepEqual(await signedIn(good), { id: 'bob' });
    await connected(bad);
    const badStates = [];
    bad.connection.bind('state_change', (st) => badStates.push(st.current));
    // pusher-js reports the server's pusher:error and the 4009 close as
    // PusherError events, and treats 4009 as a refusal.
    await eventually(() => errors.some((e) => e?.type === 'PusherError' && e.data?.code === 4009) && bad.connection.state === 'disconnected', {
      timeout: 5000,
      label: 'pusher-js reports 4009 and disconnects',
    });
    // (pusher-js also wraps the close's PusherError in a WebSocketError.)
    const codeOf = (e) => (e?.type === 'WebSocketError' ? e.error?.data?.code : e?.data?.code);
    assert.deepEqual([...new Set(errors.map(codeOf))], [4009], `only 4009 errors: ${JSON.stringify(errors)}`);
    assert.equal(good.connection.state, 'connected');
    assert.equal(good.connection.socket_id, goodId, 'the signed-in client kept its connection');
    assert.deepEqual(goodErrors, [], 'the signed-in client got no error');
    await sleep(1500);
    assert.equal(bad.connection.state, 'disconnected', `4009 means: do not reconnect (states ${badStates.join(',')})`);
    assert.ok(!badStates.includes('connecting'), `no reconnect attempt (states ${badStates.join(',')})`);
  } finally {
    good.disconnect();
    bad.disconnect();
  }
});
