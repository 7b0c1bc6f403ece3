// After the handshake: legacy rfc4 bytes and unknown packets are ignored
// (counted), never fatal; undecodable frames close. HTTP: /status,
// /rooms/status, /health/live, 404 JSON, the reference's metric names,
// ?access_token= accepted and ignored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HTTP_URL, Rfc4Packet, WsPacket, connectSocket, createEphemeralIdentity, createGodotIdentity, expectPacket,
  getJSON, metric, metricsText, roomName, eventually,
} from './harness.mjs';

test('legacy rfc4 packets (early Godot builds) after the handshake are ignored, not fatal', async () => {
  const room = roomName('rfc4');
  const godot = await connectSocket(createGodotIdentity(), room, { protocols: ['rfc5'] });
  const other = await connectSocket(createEphemeralIdentity(), room);
  await godot.next(1000, 'join');
  const before = await metric('dcl_ws_rooms_unknown_sent_messages_total');

  const rfc4 = [
    { message: { $case: 'position', position: { index: 7, positionX: 1.5, positionY: 0, positionZ: -3, rotationX: 0, rotationY: 0, rotationZ: 0, rotationW: 1, serializedProfile: '', baseUrl: '' } }, protocolVersion: 100 },
    { message: { $case: 'profileVersion', profileVersion: { profileVersion: 5, timestamp: 1 } }, protocolVersion: 100 },
    { message: { $case: 'voice', voice: { encodedSamples: Uint8Array.from([0xff, 0xfe, 0x00, 0x80]), index: 3, codec: 0 } }, protocolVersion: 100 },
    { message: { $case: 'chat', chat: { message: 'hi', timestamp: 1 } }, protocolVersion: 100 },
    { message: { $case: 'scene', scene: { sceneId: 's', data: Uint8Array.from([1]) } }, protocolVersion: 100 },
  ];
  for (const p of rfc4) {
    const bytes = Rfc4Packet.encode(Rfc4Packet.fromPartial(p)).finish();
    // They really do decode as WsPacket, to something that is not an update.
    const asWs = WsPacket.decode(bytes);
    assert.notEqual(asWs.message?.$case, 'peerUpdateMessage');
    await godot.send(bytes);
  }
  // Server-to-client packets sent by a client, and an empty frame.
  await godot.sendPacket({ message: { $case: 'peerKicked', peerKicked: { reason: 'x' } } });
  await godot.sendPacket({ message: { $case: 'welcomeMessage', welcomeMessage: { alias: 1, peerIdentities: {} } } });
  await godot.send(new Uint8Array(0));
  const ignored = rfc4.length + 3;

  await godot.sendUpdate([1, 2, 3]);
  const u = expectPacket(await other.next(1000, 'update after the junk'), 'peerUpdateMessage');
  assert.deepEqual(u.body, Uint8Array.from([1, 2, 3]));
  assert.equal(u.fromAlias, godot.welcomeMessage.alias);
  assert.ok(godot.isOpen);
  await eventually(async () => (await metric('dcl_ws_rooms_unknown_sent_messages_total')) >= before + ignored, 2000,
    'unknown messages counted');
  godot.close();
  other.close();
});

test('an undecodable frame after the handshake closes the peer, and its room hears peer_leave', async () => {
  const room = roomName('broken');
  const a = await connectSocket(createEphemeralIdentity(), room);
  const b = await connectSocket(createEphemeralIdentity(), room);
  await a.next(1000, 'join');
  await a.send(new Uint8Array([1, 2, 3, 4, 5, 6]));
  const { code } = await a.closedWithin(1000, 'broken peer');
  assert.equal(code, 1005);
  assert.equal(expectPacket(await b.next(1000, 'leave'), 'peerLeaveMessage').alias, a.welcomeMessage.alias);
  b.close();
});

test('a frame over 16 KiB closes the connection', async () => {
  const room = roomName('big');
  const a = await connectSocket(createEphemeralIdentity(), room);
  const b = await connectSocket(createEphemeralIdentity(), room);
  await a.next(1000, 'join');
  await a.sendUpdate(new Uint8Array(16 * 1024 - 64));
  assert.equal(expectPacket(await b.next(1000, 'big update'), 'peerUpdateMessage').body.length, 16 * 1024 - 64);
  await a.sendUpdate(new Uint8Array(16 * 1024 + 1));
  await a.closedWithin(2000, 'too big');
  assert.equal(expectPacket(await b.next(2000, 'leave'), 'peerLeaveMessage').alias, a.welcomeMessage.alias);
  b.close();
});

test('?access_token= is accepted and ignored; other prefixes serve rooms too', async () => {
  const room = roomName('tok');
  const a = await connectSocket(createEphemeralIdentity(), room, { path: `/rooms/${room}?access_token=eyJhbGciOiJIUzI1NiJ9.e30.x` });
  const b = await connectSocket(createEphemeralIdentity(), room, { path: `/mini-comms/${room}` });
  assert.equal(expectPacket(await a.next(1000, 'join via the other prefix'), 'peerJoinMessage').alias, b.welcomeMessage.alias);
  a.close();
  b.close();
});

test('GET /status and /rooms/status: the reference JSON, with CORS', async () => {
  const room = roomName('status');
  const a = await connectSocket(createEphemeralIdentity(), room);
  const b = await connectSocket(createEphemeralIdentity(), room);
  for (const path of ['/status', '/rooms/status']) {
    const { status, headers, body } = await getJSON(path);
    assert.equal(status, 200);
    assert.equal(headers.get('access-control-allow-origin'), '*');
    assert.equal(body.commitHash, 'unknown');
    assert.equal(typeof body.version, 'string');
    assert.ok(Math.abs(body.currentTime - Date.now()) < 5000);
    assert.ok(body.users >= 2 && body.rooms >= 1);
    assert.deepEqual(body.details.find((d) => d.roomName === room), { roomName: room, count: 2 });
  }
  a.close();
  b.close();
});

test('other paths: 404 {"error":"Not Found"}; /health/live says alive', async () => {
  let res = await fetch(HTTP_URL + '/rooms/a/b');
  assert.equal(res.status, 404);
  assert.deepEqual(await res.json(), { error: 'Not Found' });
  res = await fetch(HTTP_URL + '/health/live');
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'alive');
});

test('/metrics has the reference metric names', async () => {
  const a = await connectSocket(createEphemeralIdentity(), roomName('metrics'));
  const text = await metricsText();
  for (const name of [
    'dcl_ws_rooms_count', 'dcl_ws_rooms_connections', 'dcl_ws_rooms_connections_total', 'dcl_ws_rooms_kicks_total',
    'dcl_ws_rooms_unknown_sent_messages_total', 'dcl_ws_rooms_in_messages', 'dcl_ws_rooms_in_bytes',
    'dcl_ws_rooms_out_messages', 'dcl_ws_rooms_out_bytes', 'ws_room_service_build_info',
  ]) {
    assert.match(text, new RegExp(`^${name}(\\{[^}]*\\})? `, 'm'), `${name} missing`);
  }
  assert.ok((await metric('dcl_ws_rooms_connections')) >= 1);
  a.close();
});
