// The handshake, as the reference e2e suite and the real clients drive it:
// silence and noise close with no message; every client's chain style gets
// a welcome; bad chains close only their own socket, with no message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Authenticator, connectSocket, createEphemeralIdentity, createGodotIdentity, createKernelIdentity,
  expectPacket, getJSON, metric, open, roomName, eventually,
} from './harness.mjs';

test('connecting one socket and sending nothing disconnects it after one second, with no message', async () => {
  const ws = open(`/rooms/${roomName('silent')}`);
  await ws.opened;
  const start = Date.now();
  const { code } = await ws.closedWithin(3000, 'silent socket');
  const took = Date.now() - start;
  assert.equal(ws.received, 0, 'no message may arrive');
  // Not before the timeout (a lower bound the server alone controls); how
  // late is the machine's business (closedWithin bounds the wait).
  assert.ok(took >= 900, `closed after ${took} ms, before the 1000 ms timeout`);
  assert.equal(code, 1005, 'a close frame without a status code, as uWS end()');
});

test('connecting one socket and sending noise disconnects it immediately, with no message', async () => {
  const ws = open(`/rooms/${roomName('noise')}`);
  await ws.opened;
  const start = Date.now();
  await ws.send(new Uint8Array([1, 2, 3, 4, 5, 6]));
  await ws.closedWithin(3000, 'noisy socket');
  assert.equal(ws.received, 0);
  assert.ok(Date.now() - start < 800, 'closed at once');
});

test('a slow client: the second stage has its own one-second timer', async () => {
  const id = createEphemeralIdentity();
  const ws = open(`/rooms/${roomName('stage2')}`);
  await ws.opened;
  await ws.sendPacket({ message: { $case: 'peerIdentification', peerIdentification: { address: id.address } } });
  expectPacket(await ws.next(2000, 'challenge'), 'challengeMessage');
  const start = Date.now();
  await ws.closedWithin(3000, 'silent after the challenge');
  const took = Date.now() - start;
  assert.ok(took >= 900, `closed ${took} ms after the challenge, before its own 1000 ms timer`);
  assert.equal(ws.received, 1);
});

test('the reference e2e identity (createAuthChain) connects and authenticates', async () => {
  const ws = await connectSocket(createEphemeralIdentity(), roomName('e2e'));
  assert.ok(ws.welcomeMessage.alias > 0);
  assert.deepEqual(ws.welcomeMessage.peerIdentities, {});
  assert.match(ws.challengeMessage.challengeToSign, /^dcl-[0-9a-z]+$/);
  assert.equal(ws.challengeMessage.alreadyConnected, false);
  ws.close();
});

test('the browser kernel: subprotocols rfc5,rfc4 echo rfc5; initializeAuthChain + signPayload', async () => {
  const ws = await connectSocket(await createKernelIdentity(), roomName('kernel'), { protocols: ['rfc5', 'rfc4'] });
  assert.equal(ws.ws.protocol, 'rfc5');
  ws.close();
});

test('comms3-transports subprotocol comms-ws-transport is echoed', async () => {
  const ws = open(`/rooms/${roomName('c3')}`, 'comms-ws-transport');
  await ws.opened;
  assert.equal(ws.ws.protocol, 'comms-ws-transport');
  ws.close();
});

test('the Godot explorer: subprotocol rfc5 and a simple two-link chain', async () => {
  const ws = await connectSocket(createGodotIdentity(), roomName('godot'), { protocols: ['rfc5'] });
  assert.equal(ws.ws.protocol, 'rfc5');
  assert.ok(ws.welcomeMessage.alias > 0);
  ws.close();
});

test('the identification address is case-insensitive; the room knows it in lower case', async () => {
  const id = createEphemeralIdentity();
  const room = roomName('case');
  const first = await connectSocket(createEphemeralIdentity(), room);
  const upper = await connectSocket({ ...id, address: '0x' + id.address.slice(2).toUpperCase() }, room);
  const join = expectPacket(await first.next(1000, 'join'), 'peerJoinMessage');
  assert.equal(join.address, id.address.toLowerCase());
  first.close();
  upper.close();
});

/** Identify as id, then answer the challenge with chain(challenge). */
async function badHandshake(id, chain) {
  const room = roomName('bad');
  const watcher = await connectSocket(createEphemeralIdentity(), room);
  const ws = open(`/rooms/${room}`);
  await ws.opened;
  await ws.sendPacket({ message: { $case: 'peerIdentification', peerIdentification: { address: id.address } } });
  const ch = expectPacket(await ws.next(2000, 'challenge'), 'challengeMessage');
  const authChainJson = typeof chain === 'string' ? chain : JSON.stringify(await chain(ch.challengeToSign));
  await ws.sendPacket({ message: { $case: 'signedChallengeForServer', signedChallengeForServer: { authChainJson } } });
  const { code } = await ws.closedWithin(2000, 'bad chain');
  assert.equal(ws.received, 1, 'nothing after the challenge');
  assert.equal(code, 1005);
  // The room never heard of it, and its peer is still there: a newcomer's
  // join is the watcher's next packet.
  const st = await getJSON('/rooms/status');
  assert.deepEqual(st.body.details.find((d) => d.roomName === room), { roomName: room, count: 1 });
  const newcomer = await connectSocket(createEphemeralIdentity(), room);
  assert.equal(expectPacket(await watcher.next(1000, 'watcher'), 'peerJoinMessage').alias, newcomer.welcomeMessage.alias);
  watcher.close();
  newcomer.close();
}

test('bad chains close only their own socket, with no message, counted by reason', async (t) => {
  const other = createEphemeralIdentity();
  const before = await metric('switchboard_protocol_errors_total', 'app="",protocol="dcl",reason="auth_wrong_payload"');
  await t.test('chain signing another challenge', () => {
    const id = createEphemeralIdentity();
    return badHandshake(id, (c) => id.sign('dcl-not-' + c));
  });
  await t.test('chain of another wallet', () => badHandshake(createEphemeralIdentity(), other.sign));
  await t.test('expired ephemeral key', () => {
    const id = createEphemeralIdentity(-1);
    return badHandshake(id, id.sign);
  });
  await t.test('forged one-link chain (accepted by the reference)', () =>
    badHandshake(createEphemeralIdentity(), (c) => [{ type: 'SIGNER', payload: c, signature: '' }]));
  await t.test('SIGNER only, of the right address', () => {
    const id = createEphemeralIdentity();
    return badHandshake(id, () => [{ type: 'SIGNER', payload: id.address, signature: '' }]);
  });
  await t.test('tampered signature', () => {
    const id = createEphemeralIdentity();
    return badHandshake(id, async (c) => {
      const chain = await id.sign(c);
      const s = chain[2].signature;
      chain[2].signature = s.slice(0, 10) + (s[10] === 'a' ? 'b' : 'a') + s.slice(11);
      return chain;
    });
  });
  await t.test('not JSON', () => badHandshake(createEphemeralIdentity(), '{"type":'));
  await t.test('wrong link type names', () => {
    const id = createEphemeralIdentity();
    return badHandshake(id, async (c) => (await id.sign(c)).map((l) => ({ ...l, type: 'ECDSA_PERSONAL_EPHEMERAL' })));
  });
  await eventually(async () =>
    (await metric('switchboard_protocol_errors_total', 'app="",protocol="dcl",reason="auth_wrong_payload"')) >= before + 1,
    2000, 'auth_wrong_payload counted');
});

test('anything but the expected packet during the handshake closes with no message', async (t) => {
  const cases = {
    'an update first': { message: { $case: 'peerUpdateMessage', peerUpdateMessage: { fromAlias: 0, body: new Uint8Array([1]), unreliable: false } } },
    'an empty packet first': {},
    'an invalid address': { message: { $case: 'peerIdentification', peerIdentification: { address: '0x1234' } } },
  };
  for (const [name, packet] of Object.entries(cases)) {
    await t.test(name, async () => {
      const ws = open(`/rooms/${roomName('unexpected')}`);
      await ws.opened;
      await ws.sendPacket(packet);
      const { code } = await ws.closedWithin(2000, name);
      assert.equal(ws.received, 0);
      assert.equal(code, 1005);
    });
  }
  await t.test('identification twice', async () => {
    const id = createEphemeralIdentity();
    const ws = open(`/rooms/${roomName('twice')}`);
    await ws.opened;
    const ident = { message: { $case: 'peerIdentification', peerIdentification: { address: id.address } } };
    await ws.sendPacket(ident);
    await ws.next(2000, 'challenge');
    await ws.sendPacket(ident);
    await ws.closedWithin(2000, 'identification twice');
    assert.equal(ws.received, 1);
  });
});

test('Authenticator.validateSignature agrees with the server on a real chain', async () => {
  // Sanity of the test identities themselves: the reference validator
  // accepts what we send.
  const id = await createKernelIdentity();
  const chain = await id.sign('dcl-sanity');
  const res = await Authenticator.validateSignature('dcl-sanity', chain, null);
  assert.equal(res.ok, true, res.message);
});
