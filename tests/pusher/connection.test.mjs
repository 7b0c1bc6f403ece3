// Raw-frame checks of the connection and every error path a client can hit
// (spec §1.1-1.7), with the `ws` client so the exact frames and close codes
// are visible.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, app, RawClient, sdk, dataOf, uid, sleep } from './harness.mjs';

let srv;
const MAX_MSG = 4096;

before(async () => {
  srv = await startServer({
    limits: { max_message_bytes: MAX_MSG },
    apps: [
      app(),
      app({ id: 'disabled-id', key: 'disabled-key', secret: 'disabled-secret', enabled: false }),
      app({ id: 'quota-id', key: 'quota-key', secret: 'quota-secret', limits: { max_connections: 2 } }),
    ],
  });
});
after(async () => {
  await srv?.stop();
});

/** pusher:error's data may be an object (spec §1.5) or a JSON string (real Pusher capture). */
function errorData(m) {
  assert.equal(m.event, 'pusher:error', `expected pusher:error, got ${JSON.stringify(m)}`);
  const d = dataOf(m);
  assert.equal(typeof d, 'object', `pusher:error data must be an object (or a JSON string of one): ${JSON.stringify(m)}`);
  assert.ok('code' in d, `pusher:error data has a code key: ${JSON.stringify(m)}`);
  assert.equal(typeof d.message, 'string', `pusher:error data has a message: ${JSON.stringify(m)}`);
  return d;
}

/** Expect pusher:error with code, then a close frame with the same code. */
async function expectRefusal(url, code) {
  const c = await RawClient.connect(url, { established: false });
  const closed = await c.waitClose(5000);
  const errs = c.all((m) => m?.event === 'pusher:error');
  const established = c.all((m) => m?.event === 'pusher:connection_established');
  assert.equal(established.length, 0, `no connection_established before a refusal; frames: ${c.dump()}`);
  assert.equal(errs.length, 1, `exactly one pusher:error before close ${code}; frames: ${c.dump()}`);
  assert.equal(errorData(errs[0]).code, code);
  assert.equal(closed.code, code, `close code; reason ${JSON.stringify(closed.reason)}`);
  return { c, error: errs[0], closed };
}

test('connection_established: exact envelope, data is a JSON string, socket_id and activity_timeout', async () => {
  const a = await RawClient.connect(srv.wsURL());
  const b = await RawClient.connect(srv.wsURL());
  try {
    const f = a.frames[0];
    assert.equal(a.frames.indexOf(f), 0, 'connection_established is the first frame');
    assert.deepEqual(Object.keys(f.msg).sort(), ['data', 'event']);
    assert.equal(f.msg.event, 'pusher:connection_established');
    assert.equal(typeof f.msg.data, 'string', 'data is double encoded (a JSON string)');
    const d = JSON.parse(f.msg.data);
    assert.match(d.socket_id, /^\d+\.\d+$/);
    assert.equal(d.activity_timeout, 120, 'default activity_timeout is 120 s');
    assert.equal(Number.isInteger(d.activity_timeout), true);
    assert.match(f.raw, /^\{"event":"pusher:connection_established","data":"\{\\"socket_id\\":\\"\d+\.\d+\\",\\"activity_timeout\\":120\}"\}$/);
    assert.notEqual(a.socketId, b.socketId, 'socket ids are unique per connection');
  } finally {
    a.close();
    b.close();
  }
});

test('pusher:ping gets pusher:pong with data "{}" (string)', async () => {
  const c = await RawClient.connect(srv.wsURL());
  try {
    c.send({ event: 'pusher:ping', data: {} });
    const f = await c.take((m) => m?.event === 'pusher:pong', 3000, 'pong', { withRaw: true });
    assert.equal(f.msg.data, '{}');
    assert.equal(f.raw, '{"event":"pusher:pong","data":"{}"}');
    // pusher-js in browsers also sends data as a string sometimes; data-less pings too.
    c.send({ event: 'pusher:ping' });
    const p2 = await c.expect('pusher:pong');
    assert.equal(p2.data, '{}');
  } finally {
    c.close();
  }
});

test('unknown query parameters are accepted (pusher-js flash=false, echo_messages, format)', async () => {
  const c = await RawClient.connect(srv.wsURL('app-key', 'protocol=7&client=js&version=8.6.0&flash=false&echo_messages=false&format=json'));
  assert.match(c.socketId, /^\d+\.\d+$/);
  c.close();
  for (const p of ['5', '6']) {
    const d = await RawClient.connect(srv.wsURL('app-key', `protocol=${p}&client=js&version=8.6.0`));
    assert.match(d.socketId, /^\d+\.\d+$/, `protocol ${p} is accepted`);
    d.close();
  }
});

test('unknown app key: pusher:error 4001, then close 4001', async () => {
  const { error } = await expectRefusal(srv.wsURL('no-such-key'), 4001);
  assert.match(errorData(error).message, /no-such-key|does not exist/i);
});

test('unknown non-ASCII app key: still 4001, with a valid UTF-8 close reason', async () => {
  // RFC 6455: the close reason is UTF-8; `ws` fails the connection (1007,
  // seen as 1006) if the key echoed in the reason is cut mid-character.
  await expectRefusal(srv.wsURL('a' + 'é'.repeat(40)), 4001);
});

test('disabled app: pusher:error 4003, then close 4003', async () => {
  await expectRefusal(srv.wsURL('disabled-key'), 4003);
});

test('over max_connections: 4004 for the extra connection, the others stay up', async () => {
  const a = await RawClient.connect(srv.wsURL('quota-key'));
  const b = await RawClient.connect(srv.wsURL('quota-key'));
  try {
    await expectRefusal(srv.wsURL('quota-key'), 4004);
    await a.ping();
    await b.ping();
    // Another app is not affected by this app's quota.
    const other = await RawClient.connect(srv.wsURL('app-key'));
    other.close();
    // A slot frees up when a connection closes.
    await a.close();
    let c;
    for (let i = 0; i < 40 && !c; i++) {
      const x = await RawClient.connect(srv.wsURL('quota-key'), { established: false });
      const m = await x.take((m) => m?.event === 'pusher:connection_established' || m?.event === 'pusher:error', 3000, 'established or error');
      if (m.event === 'pusher:connection_established') c = x;
      else {
        await x.waitClose();
        await sleep(50);
      }
    }
    assert.ok(c, 'a new connection is accepted after one of the two closed');
    // An abrupt drop (no close frame) frees its slot too.
    await c.terminate();
    let d;
    for (let i = 0; i < 40 && !d; i++) {
      const x = await RawClient.connect(srv.wsURL('quota-key'), { established: false });
      const m = await x.take((m) => m?.event === 'pusher:connection_established' || m?.event === 'pusher:error', 3000, 'established or error');
      if (m.event === 'pusher:connection_established') d = x;
      else {
        await x.waitClose();
        await sleep(50);
      }
    }
    assert.ok(d, 'a new connection is accepted after an abrupt drop');
    d.close();
  } finally {
    a.close();
    b.close();
  }
});

test('protocol=3: pusher:error 4007, then close 4007', async () => {
  await expectRefusal(srv.wsURL('app-key', 'protocol=3&client=js&version=8.6.0'), 4007);
});

test('protocol=abc: pusher:error 4006, then close 4006', async () => {
  await expectRefusal(srv.wsURL('app-key', 'protocol=abc&client=js&version=8.6.0'), 4006);
});

test('non-JSON text: pusher:error with code null, socket stays open', async () => {
  const c = await RawClient.connect(srv.wsURL());
  try {
    c.send('this is not json');
    const e = errorData(await c.expect('pusher:error'));
    assert.equal(e.code, null);
    await c.ping();
    for (const bad of ['[1,2,3]', '"a string"', '42', '{"data":{}}', '{"event":""}', '{"event":', '']) {
      c.send(bad);
      const e2 = errorData(await c.take((m) => m?.event === 'pusher:error', 3000, `pusher:error for ${JSON.stringify(bad)}`));
      assert.equal(e2.code, null, `code null for ${JSON.stringify(bad)}`);
      assert.ok(c.isOpen(), `still open after ${JSON.stringify(bad)}`);
    }
    await c.ping();
  } finally {
    c.close();
  }
});

test('RFC 6455: fragmented text messages are reassembled; invalid UTF-8 in a text frame closes with 1007', async () => {
  const c = await RawClient.connect(srv.wsURL());
  const parts = ['{"event":"pusher:pi', 'ng","da', 'ta":{}}'];
  c.ws.send(parts[0], { fin: false });
  c.ws.send(parts[1], { fin: false });
  c.ws.send(parts[2], { fin: true });
  assert.equal((await c.expect('pusher:pong')).data, '{}');
  c.ws.send(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), { binary: false });
  const closed = await c.waitClose(5000);
  assert.equal(closed.code, 1007);
});

test('unknown event: pusher:error with code null, socket stays open', async () => {
  const c = await RawClient.connect(srv.wsURL());
  try {
    c.send({ event: 'pusher:nonsense', data: {} });
    assert.equal(errorData(await c.expect('pusher:error')).code, null);
    c.send({ event: 'whatever', data: {} });
    assert.equal(errorData(await c.expect('pusher:error')).code, null);
    await c.ping();
  } finally {
    c.close();
  }
});

test('message over limits.max_message_bytes: close 1009', async () => {
  const c = await RawClient.connect(srv.wsURL());
  const small = JSON.stringify({ event: 'client-x', channel: 'private-x', data: 'y'.repeat(MAX_MSG - 200) });
  assert.ok(small.length < MAX_MSG);
  c.send({ event: 'pusher:ping', data: { pad: 'x'.repeat(MAX_MSG - 100) } }); // just under: still fine
  await c.expect('pusher:pong');
  c.send({ event: 'pusher:ping', data: { pad: 'x'.repeat(MAX_MSG + 10) } });
  const closed = await c.waitClose(5000);
  assert.equal(closed.code, 1009);
});

test('bad channel names: pusher:error code null, no subscription, socket stays open', async () => {
  const c = await RawClient.connect(srv.wsURL());
  try {
    const bad = ['bad name', 'bad!name', 'naïve', '#reserved', '#server-to-user-someone', 'x'.repeat(201), ''];
    for (const name of bad) {
      c.send({ event: 'pusher:subscribe', data: { channel: name, auth: '' } });
      const e = errorData(await c.take((m) => m?.event === 'pusher:error', 3000, `pusher:error for channel ${JSON.stringify(name)}`));
      assert.equal(e.code, null, `code null for ${JSON.stringify(name.slice(0, 30))}`);
      assert.ok(c.isOpen());
    }
    await c.ping();
    assert.equal(c.all((m) => m?.event === 'pusher_internal:subscription_succeeded').length, 0);
    // The full legal alphabet and exactly 200 characters are fine.
    await c.subscribe('AZaz09_-=@,.;');
    await c.subscribe('y'.repeat(200));
  } finally {
    c.close();
  }
});

test('subscribe with missing data or channel: pusher:error, socket stays open', async () => {
  const c = await RawClient.connect(srv.wsURL());
  try {
    c.send({ event: 'pusher:subscribe' });
    errorData(await c.expect('pusher:error'));
    c.send({ event: 'pusher:subscribe', data: {} });
    errorData(await c.expect('pusher:error'));
    c.send({ event: 'pusher:subscribe', data: { channel: 42 } });
    errorData(await c.expect('pusher:error'));
    await c.ping();
  } finally {
    c.close();
  }
});

test('private subscription with a bad auth: pusher:error code null + pusher:subscription_error 401, socket open', async () => {
  const c = await RawClient.connect(srv.wsURL());
  try {
    const ch = uid('private-bad-');
    c.send({ event: 'pusher:subscribe', data: { channel: ch, auth: 'app-key:' + '0'.repeat(64) } });
    const err = await c.expect('pusher:error');
    const ed = errorData(err);
    assert.equal(ed.code, null);
    assert.match(ed.message, /Invalid signature/);
    const se = await c.expect('pusher:subscription_error', ch);
    const sd = dataOf(se);
    assert.equal(sd.status, 401, `subscription_error status: ${JSON.stringify(se)}`);
    assert.equal(sd.type, 'AuthError');
    assert.equal(typeof sd.error, 'string');
    assert.ok(c.isOpen());

    // No auth at all: Pusher's "Auth info required" text.
    const ch2 = uid('private-noauth-');
    c.send({ event: 'pusher:subscribe', data: { channel: ch2 } });
    const e2 = errorData(await c.expect('pusher:error'));
    assert.equal(e2.code, null);
    assert.equal(e2.message, `Auth info required to subscribe to ${ch2}`);
    assert.equal(dataOf(await c.expect('pusher:subscription_error', ch2)).status, 401);

    // Signed with another app's key/secret.
    const other = sdk(srv, { id: 'quota-id', key: 'quota-key', secret: 'quota-secret' });
    const ch3 = uid('private-otherapp-');
    c.send({ event: 'pusher:subscribe', data: { channel: ch3, ...other.authorizeChannel(c.socketId, ch3) } });
    assert.equal(errorData(await c.expect('pusher:error')).code, null);
    assert.equal(dataOf(await c.expect('pusher:subscription_error', ch3)).status, 401);

    // Signed for another socket.
    const ch4 = uid('private-othersock-');
    c.send({ event: 'pusher:subscribe', data: { channel: ch4, ...sdk(srv).authorizeChannel('1.1', ch4) } });
    assert.equal(errorData(await c.expect('pusher:error')).code, null);

    // Presence whose channel_data was changed after signing.
    const ch5 = uid('presence-tamper-');
    const auth = sdk(srv).authorizeChannel(c.socketId, ch5, { user_id: 'u1', user_info: { n: 1 } });
    c.send({ event: 'pusher:subscribe', data: { channel: ch5, auth: auth.auth, channel_data: JSON.stringify({ user_id: 'admin' }) } });
    assert.equal(errorData(await c.expect('pusher:error')).code, null);
    assert.equal(dataOf(await c.expect('pusher:subscription_error', ch5)).status, 401);

    await c.ping();
    assert.equal(c.all((m) => m?.event === 'pusher_internal:subscription_succeeded').length, 0);
    // The same socket can still subscribe properly afterwards.
    const ok = await c.subscribe(ch, sdk(srv).authorizeChannel(c.socketId, ch));
    assert.deepEqual(ok, { event: 'pusher_internal:subscription_succeeded', channel: ch, data: '{}' });
  } finally {
    c.close();
  }
});

test('duplicate subscription: one subscription (pusher:error code null), events delivered once', async () => {
  const c = await RawClient.connect(srv.wsURL());
  try {
    const ch = uid('dup-');
    await c.subscribe(ch);
    c.send({ event: 'pusher:subscribe', data: { channel: ch, auth: '' } });
    const e = errorData(await c.expect('pusher:error'));
    assert.equal(e.code, null);
    assert.match(e.message, /Existing subscription to channel/);
    await sdk(srv).trigger(ch, 'once', { n: 1 });
    await c.expect('once', ch);
    const extra = await c.quiet((m) => m?.event === 'once' || m?.event === 'pusher_internal:subscription_succeeded');
    assert.deepEqual(extra, []);
    assert.ok(c.isOpen());
  } finally {
    c.close();
  }
});

test('unsubscribe: no reply; no more events; unknown channel ignored; resubscribe works', async () => {
  const c = await RawClient.connect(srv.wsURL());
  try {
    const ch = uid('unsub-');
    await c.subscribe(ch);
    c.unsubscribe(ch);
    c.unsubscribe(ch); // twice: idempotent
    c.unsubscribe(uid('never-subscribed-'));
    await c.ping();
    await sdk(srv).trigger(ch, 'after-unsub', {});
    const got = await c.quiet();
    assert.deepEqual(got, [], 'nothing at all after unsubscribe (no reply, no event)');
    await c.subscribe(ch);
    await sdk(srv).trigger(ch, 'after-resub', {});
    await c.expect('after-resub', ch);
    assert.deepEqual(c.all((m) => m?.event === 'after-unsub'), [], 'published while unsubscribed: never delivered, not even late');
  } finally {
    c.close();
  }
});

test('pusher: / pusher_internal: events from a client are never re-broadcast', async () => {
  const s = sdk(srv);
  const a = await RawClient.connect(srv.wsURL());
  const b = await RawClient.connect(srv.wsURL());
  try {
    const ch = uid('presence-spoof-');
    await a.subscribe(ch, s.authorizeChannel(a.socketId, ch, { user_id: 'a' }));
    await b.subscribe(ch, s.authorizeChannel(b.socketId, ch, { user_id: 'b' }));
    await a.expect('pusher_internal:member_added', ch);
    b.send({ event: 'pusher_internal:member_added', channel: ch, data: JSON.stringify({ user_id: 'ghost' }) });
    b.send({ event: 'pusher:member_removed', channel: ch, data: JSON.stringify({ user_id: 'a' }) });
    await b.ping();
    const leaked = await a.quiet();
    assert.deepEqual(leaked, [], 'a saw nothing');
  } finally {
    a.close();
    b.close();
  }
});

test('the server survives all of the above', async () => {
  const r = await fetch(`${srv.httpURL}/healthz`);
  assert.equal(r.status, 200);
  const c = await RawClient.connect(srv.wsURL());
  await c.ping();
  c.close();
});
