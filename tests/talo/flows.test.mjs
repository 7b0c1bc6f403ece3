// The Godot plugin's and the Unity package's traffic (spec sections 14 and
// 18), replayed against the real server: health checks, HTTP identify,
// ticket, connect, socket identify, channels over HTTP with their pushes,
// message fan-out, leave, presence, relationships broadcast, and the
// reconnect both clients do after the socket closes.
import { test, before } from 'node:test';
import {
  startServer, PLAYER_SCOPES, expectHTTP, withPresence, presenceLite, presenceUpdated, channelJSON, withCount,
  errFrame, identifySocket, identifyUnity,
} from './harness.mjs';

let srv;
before(async () => {
  srv = await startServer();
});

test('Godot flow: identify, channel create/join/message/leave, presence, disconnect', async () => {
  const { key } = srv.provision('godot-game');
  expectHTTP(await srv.http('GET', '/public/health'), 204, '');
  expectHTTP(await srv.http('GET', '/v1/health-check', key), 204, '');

  const ann = await srv.identify(key, 'ann');
  if (withPresence(ann.raw, 'null') !== ann.raw.replace(/"\d{4}-[^"]*Z"/g, '"<T>"')) throw new Error(`new alias has presence: ${ann.raw}`);
  const a = await srv.connect(key);
  const annOnline = await identifySocket(a, ann);

  const bob = await srv.identify(key, 'bob');
  const b = await srv.connect(key);
  const bobOnline = await identifySocket(b, bob);
  await a.expect(presenceUpdated(bobOnline, true, '', true, true)); // same game, read:playerPresence

  // Create (Godot's create options body): the creator gets player-joined.
  const alias = (p) => ({ 'X-Talo-Alias': String(p.aliasId), 'X-Talo-Player': p.playerId });
  let r = await srv.http('POST', '/v1/game-channels', key, {
    body: '{"name":"general","props":[],"autoCleanup":false,"private":false,"temporaryMembership":false}', headers: alias(ann),
  });
  const id = JSON.parse(r.body).channel?.id;
  const ch = channelJSON(id, 'general', annOnline, 0);
  expectHTTP(r, 200, `{"channel":${withCount(ch, 1)}}`);
  await a.expect(`{"res":"v1.channels.player-joined","data":{"channel":${ch},"playerAlias":${annOnline}}}`);

  // Join: every member, the joiner included; bob's first frame is his own
  // join, so the create's push did not reach him.
  expectHTTP(await srv.http('POST', `/v1/game-channels/${id}/join`, key, { headers: alias(bob) }), 200, `{"channel":${withCount(ch, 2)}}`);
  const joined = `{"res":"v1.channels.player-joined","data":{"channel":${ch},"playerAlias":${bobOnline}}}`;
  await a.expect(joined);
  await b.expect(joined);
  // Joining again answers the same and pushes nothing.
  expectHTTP(await srv.http('POST', `/v1/game-channels/${id}/join`, key, { headers: alias(bob) }), 200, `{"channel":${withCount(ch, 2)}}`);

  // Message fan-out: every member, the sender included, in send order.
  a.send(`{"req":"v1.channels.message","data":{"channel":{"id":${id}},"message":"hi <all> & \\"you\\""}}`);
  a.send(`{"req":"v1.channels.message","data":{"channel":{"id":${id}},"message":"second"}}`);
  for (const c of [a, b]) {
    await c.expect(`{"res":"v1.channels.message","data":{"channel":${ch},"message":"hi <all> & \\"you\\"","playerAlias":${annOnline}}}`);
    await c.expect(`{"res":"v1.channels.message","data":{"channel":${channelJSON(id, 'general', annOnline, 1)},"message":"second","playerAlias":${annOnline}}}`);
  }
  b.send(`{"req":"v1.channels.message","data":{"channel":{"id":${id}},"message":"back"}}`);
  const back = `{"res":"v1.channels.message","data":{"channel":${channelJSON(id, 'general', annOnline, 2)},"message":"back","playerAlias":${bobOnline}}}`;
  await b.expect(back);
  await a.expect(back);

  const ch3 = channelJSON(id, 'general', annOnline, 3);
  expectHTTP(await srv.http('GET', `/v1/game-channels/${id}/members`, key, { headers: alias(ann) }), 200,
    `{"members":[${annOnline},${bobOnline}],"count":2,"itemsPerPage":50,"isLastPage":true}`);
  expectHTTP(await srv.http('GET', '/v1/game-channels/subscriptions', key, { headers: alias(bob) }), 200, `{"channels":[${withCount(ch3, 2)}]}`);

  // Leave: player-left, reason 0, to every member, the leaver included.
  expectHTTP(await srv.http('POST', `/v1/game-channels/${id}/leave`, key, { headers: alias(bob) }), 204, '');
  const left = `{"res":"v1.channels.player-left","data":{"channel":${ch3},"playerAlias":${bobOnline},"meta":{"reason":0}}}`;
  await a.expect(left);
  await b.expect(left);
  b.send(`{"req":"v1.channels.message","data":{"channel":{"id":${id}},"message":"still here?"}}`);
  await b.expect(errFrame('v1.channels.message', 'An error occurred while processing the message', 'LISTENER_ERROR', 'Player not in channel'));
  // ann's message now reaches ann only: bob's next frame is his marker.
  a.send(`{"req":"v1.channels.message","data":{"channel":{"id":${id}},"message":"alone"}}`);
  await a.expect(`{"res":"v1.channels.message","data":{"channel":${ch3},"message":"alone","playerAlias":${annOnline}}}`);

  // Presence PUT after identify (Godot sends both fields): meta {false, true}.
  r = await srv.http('PUT', '/v1/players/presence', key, { body: '{"online":true,"customStatus":"Testing"}', headers: alias(ann) });
  const annTesting = withPresence(ann.raw, presenceLite(true, 'Testing'));
  expectHTTP(r, 200, `{"presence":{"playerAlias":${annTesting},"online":true,"customStatus":"Testing","updatedAt":"<T>"}}`);
  const upd = presenceUpdated(annTesting, true, 'Testing', false, true);
  await a.expect(upd);
  await b.expect(upd); // bob never received ann's "alone"
  expectHTTP(await srv.http('GET', `/v1/players/presence/${ann.playerId}`, key), 200,
    `{"presence":{"playerAlias":${annTesting},"online":true,"customStatus":"Testing","updatedAt":"<T>"}}`);

  // Disconnect: bob goes offline and ann hears it.
  await b.close();
  await a.expect(presenceUpdated(withPresence(bob.raw, presenceLite(false)), false, '', true, true));
  await a.nothingQueued();
  await a.close();
});

test('Unity flow: text heartbeat, sessionToken "", reconnect with a new ticket and socket token', async () => {
  const { key } = srv.provision('unity-game');
  // A second player watches presence, so the close can be awaited.
  const watcher = await srv.identify(key, 'watcher');
  const w = await srv.connect(key);
  await identifySocket(w, watcher);

  const p = await srv.identify(key, 'unity', { headers: { 'X-Talo-Client': 'unity:0.52.1' } });
  const c = await srv.connect(key);
  c.send('v1.heartbeat');
  const echo = await c.next();
  if (echo.text !== 'v1.heartbeat' || echo.binary) throw new Error(`heartbeat echo: ${JSON.stringify(echo)}`);
  const online = await identifySocket(c, p, identifyUnity);
  await w.expect(presenceUpdated(online, true, '', true, true));

  // The socket drops without a close frame; the server marks the player
  // offline. Then Unity's OnConnectionRestored: new token, new ticket.
  c.ws.terminate();
  await c.closed;
  await w.expect(presenceUpdated(withPresence(p.raw, presenceLite(false)), false, '', true, true));
  const t = await srv.http('POST', '/v1/players/socket-token', key, { headers: { 'X-Talo-Alias': String(p.aliasId) } });
  const m = /^\{"socketToken":"([0-9a-f-]{36})"\}$/.exec(t.body);
  if (t.status !== 200 || !m || m[1] === p.socketToken) throw new Error(`socket-token: ${t.status} ${t.body}`);

  const c2 = await srv.connect(key);
  // The old token was replaced by the new one.
  c2.send(identifyUnity(p));
  await c2.expect(errFrame('v1.players.identify', 'Invalid socket token', 'INVALID_SOCKET_TOKEN'));
  const p2 = { ...p, socketToken: m[1] };
  c2.send(identifyUnity(p2));
  await c2.expect(presenceUpdated(online, true, '', true, true));
  await c2.expect(`{"res":"v1.players.identify.success","data":${online}}`);
  // A socket token is reusable within its hour.
  c2.send(identifyUnity(p2));
  await c2.expect(presenceUpdated(online, true, '', false, true));
  await c2.expect(`{"res":"v1.players.identify.success","data":${online}}`);
  await c2.close();
  await w.close();
});

test('relationships: a confirmed subscriber hears the broadcast, others do not', async () => {
  const { key } = srv.provision('friends-game', [...PLAYER_SCOPES, 'read:playerRelationships', 'write:playerRelationships',
    'read:playerBroadcasts', 'write:playerBroadcasts']);
  const ann = await srv.identify(key, 'ann');
  const bob = await srv.identify(key, 'bob');
  const a = await srv.connect(key);
  const b = await srv.connect(key);
  const annOnline = await identifySocket(a, ann);
  const bobOnline = await identifySocket(b, bob);
  await a.expect(presenceUpdated(bobOnline, true, '', true, true));

  // bob subscribes to ann; ann is told; ann confirms; bob is told.
  let r = await srv.http('POST', '/v1/players/relationships', key, {
    body: `{"aliasId":${ann.aliasId},"relationshipType":"unidirectional"}`, headers: { 'X-Talo-Alias': String(bob.aliasId) },
  });
  const subID = JSON.parse(r.body).subscription?.id;
  const sub = (confirmed) => `{"id":${subID},"subscriber":${bobOnline},"subscribedTo":${annOnline},"confirmed":${confirmed},` +
    `"relationshipType":"unidirectional","createdAt":"<T>","updatedAt":"<T>"}`;
  expectHTTP(r, 200, `{"subscription":${sub(false)}}`);
  await a.expect(`{"res":"v1.player-relationships.subscription-created","data":{"subscription":${sub(false)}}}`);
  r = await srv.http('PUT', `/v1/players/relationships/${subID}/confirm`, key, { headers: { 'X-Talo-Alias': String(ann.aliasId) } });
  expectHTTP(r, 200, `{"subscription":${sub(true)}}`);
  await b.expect(`{"res":"v1.player-relationships.subscription-confirmed","data":{"subscription":${sub(true)}}}`);

  a.send('{"req":"v1.player-relationships.broadcast","data":{"message":"gg"}}');
  await b.expect(`{"res":"v1.player-relationships.broadcast","data":{"message":"gg","playerAlias":${annOnline}}}`);
  // bob is not subscribed to by ann: his broadcast reaches nobody, and ann's
  // next frame is her marker (the sender does not get its own broadcast).
  b.send('{"req":"v1.player-relationships.broadcast","data":{"message":"hello?"}}');
  await b.nothingQueued();
  await a.nothingQueued();
  await a.close();
  await b.close();
});
