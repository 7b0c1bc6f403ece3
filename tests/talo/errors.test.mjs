// Bad input from a socket or an HTTP client: the exact v1.error frames of
// spec section 5 in the router's check order, tickets (missing, unknown,
// reused, revoked key: close 3000 after the handshake; one admission out of
// 10 concurrent connects on one ticket), binary and invalid UTF-8 frames,
// and the HTTP 400-before-403-before-404 order of section 7.
import { test, before } from 'node:test';
import {
  startServer, expectHTTP, errFrame, identifySocket,
} from './harness.mjs';

let srv;
let game;
before(async () => {
  srv = await startServer();
  game = srv.provision('errors-game');
});

const ROUTING = errFrame('unknown', 'An error occurred while routing the message', 'ROUTING_ERROR');
const invalid = (raw) => errFrame('unknown', 'Invalid message request', 'INVALID_MESSAGE', raw);

test('socket errors in check order; none closes the socket', async () => {
  // A key without read:players or write:gameChannels.
  const narrow = srv.cli('create-key', '--game', game.name, '--scopes', 'read:gameChannels');
  const c = await srv.connect(narrow);
  for (const [send, want] of [
    ['hello', ROUTING], // not JSON: a routing error, not INVALID_MESSAGE
    ['{"req":"v1.channels.message","data":{}', ROUTING],
    ['{"req":"v1.nope","data":{}}', invalid('{"req":"v1.nope","data":{}}')],
    ['{"req":"v1.players.identified","data":{}}', invalid('{"req":"v1.players.identified","data":{}}')], // the docs' name
    ['{"req":"v1.channels.message"}', invalid('{"req":"v1.channels.message"}')],
    ['{"req":"v1.channels.message","data":[]}', invalid('{"req":"v1.channels.message","data":[]}')],
    // Player before scopes: this key lacks write:gameChannels as well.
    ['{"req":"v1.channels.message","data":{}}',
      errFrame('v1.channels.message', 'You must identify a player before sending this request', 'NO_PLAYER_FOUND')],
    // Scopes before data: identify needs read:players.
    ['{"req":"v1.players.identify","data":{}}',
      errFrame('v1.players.identify', 'Missing access key scope(s): read:players', 'MISSING_ACCESS_KEY_SCOPES')],
  ]) {
    c.send(send);
    await c.expect(want);
  }

  const f = await srv.connect(game.key);
  for (const [send, want] of [
    ['{"req":"v1.players.identify","data":{}}', errFrame('v1.players.identify', 'Invalid message data for request', 'INVALID_MESSAGE_DATA', '{}')],
    // cause is JSON.stringify(data): whitespace gone, key order kept.
    ['{"req":"v1.players.identify","data": {"playerAliasId": "1", "socketToken": "x"}}',
      errFrame('v1.players.identify', 'Invalid message data for request', 'INVALID_MESSAGE_DATA', '{"playerAliasId":"1","socketToken":"x"}')],
    ['{"req":"v1.players.identify","data":{"playerAliasId":1,"socketToken":"wrong"}}',
      errFrame('v1.players.identify', 'Invalid socket token', 'INVALID_SOCKET_TOKEN')],
  ]) {
    f.send(send);
    await f.expect(want);
  }
  const p = await srv.identify(game.key, 'erin');
  await identifySocket(f, p);
  for (const [send, want] of [
    ['{"req":"v1.channels.message","data":{"channel":{},"message":"x"}}',
      errFrame('v1.channels.message', 'Invalid message data for request', 'INVALID_MESSAGE_DATA', '{"channel":{},"message":"x"}')],
    ['{"req":"v1.channels.message","data":{"channel":{"id":99999},"message":"x","extra":true}}',
      errFrame('v1.channels.message', 'An error occurred while processing the message', 'LISTENER_ERROR', 'Channel not found')],
    // Identified, but the key lacks write:playerBroadcasts: scopes before data.
    ['{"req":"v1.player-relationships.broadcast","data":{}}',
      errFrame('v1.player-relationships.broadcast', 'Missing access key scope(s): write:playerBroadcasts', 'MISSING_ACCESS_KEY_SCOPES')],
  ]) {
    f.send(send);
    await f.expect(want);
  }
  // Neither socket was closed by any of this.
  await c.nothingQueued();
  await f.nothingQueued();
  await c.close();
  await f.close();
});

test('tickets: missing, unknown, reused and revoked-key tickets close with 3000 after the handshake', async () => {
  for (const suffix of ['/', '/?ticket=', '/?ticket=6c6ef345-0ac3-4edc-a221-b807fbbac4ac']) {
    const c = srv.dial('', suffix);
    await c.open; // the upgrade completes first
    const { code, reason } = await c.closed;
    if (code !== 3000 || reason !== '') throw new Error(`${suffix}: close ${code} ${reason}`);
    if (c.frames.length) throw new Error(`${suffix}: frames before the close: ${c.frames.map((f) => f.text)}`);
  }
  const ticket = await srv.ticket(game.key);
  const first = srv.dial(ticket, '/socket?ticket='); // the docs' path: any path below the socket path
  await first.expect('{"res":"v1.connected","data":{}}');
  const again = srv.dial(ticket);
  const { code } = await again.closed;
  if (code !== 3000) throw new Error(`reused ticket: close ${code}`);

  // Revoked with the CLI between ticket and connect.
  const key = srv.cli('create-key', '--game', game.name, '--scopes', 'read:players');
  const late = await srv.ticket(key);
  srv.cli('revoke-key', key);
  const r = srv.dial(late);
  if ((await r.closed).code !== 3000) throw new Error('revoked key: not 3000');
  expectHTTP(await srv.http('POST', '/v1/socket-tickets', key, { body: '' }), 401, '{"message":"Authentication Error"}');
  await first.nothingQueued(); // the admitted socket is unaffected
  await first.close();
});

test('10 concurrent connects on one ticket: exactly one is admitted', async () => {
  const ticket = await srv.ticket(game.key);
  const outcomes = await Promise.all(Array.from({ length: 10 }, async () => {
    const c = srv.dial(ticket);
    try {
      const f = await c.next(5000, 'v1.connected or a close');
      return f.text;
    } catch {
      return String((await c.closed).code);
    }
  }));
  const counts = {};
  for (const o of outcomes) counts[o] = (counts[o] || 0) + 1;
  if (counts['{"res":"v1.connected","data":{}}'] !== 1 || counts['3000'] !== 9) throw new Error(`outcomes ${JSON.stringify(counts)}`);
});

test('binary frames are routed like text; invalid UTF-8 in a text frame closes with 1007', async () => {
  const c = await srv.connect(game.key);
  c.sendBinary(Buffer.from('v1.heartbeat'));
  const echo = await c.next();
  if (echo.text !== 'v1.heartbeat' || echo.binary) throw new Error(`binary heartbeat: ${JSON.stringify(echo)}`);
  c.sendBinary(Buffer.from([0xff, 0xfe, 0x7b]));
  await c.expect(ROUTING);
  c.sendBinary(Buffer.concat([Buffer.from('{"req":"v1.channels.message","data":{"m":"'), Buffer.from([0xff]), Buffer.from('"}}')]));
  await c.expect(errFrame('v1.channels.message', 'You must identify a player before sending this request', 'NO_PLAYER_FOUND'));
  // ws sends a Buffer with binary:false as a text frame without checking it.
  c.ws.send(Buffer.from([0x22, 0xc3, 0x22]), { binary: false });
  const { code } = await c.closed;
  if (code !== 1007) throw new Error(`invalid UTF-8 text: close ${code}`);
});

test('HTTP check order: 401, then 400 (validation), 403 (scopes), 404 (player, channel)', async () => {
  const none = srv.cli('create-key', '--game', game.name, '--scopes', 'read:players');
  const p = await srv.identify(game.key, 'hugo');
  const alias = { 'X-Talo-Alias': String(p.aliasId) };
  expectHTTP(await srv.http('GET', '/v1/game-channels'), 401, '{"message":"Authentication Error"}');
  expectHTTP(await srv.http('GET', '/v1/game-channels', 'not.a.jwt'), 401, '{"message":"Authentication Error"}');
  expectHTTP(await srv.http('POST', '/v1/game-channels', none, { body: '{"name":"x"}' }), 400,
    '{"errors":{"x-talo-alias":["x-talo-alias is missing from the request headers"]}}');
  expectHTTP(await srv.http('POST', '/v1/game-channels', none, { body: '{"name":"x"}', headers: alias }), 403,
    '{"message":"Missing access key scope(s): write:gameChannels"}');
  expectHTTP(await srv.http('POST', '/v1/game-channels', game.key, { body: '{"name":"x"}', headers: { 'X-Talo-Alias': '99999' } }), 404,
    '{"message":"Player not found"}');
  expectHTTP(await srv.http('POST', '/v1/game-channels/99999/join', game.key, { headers: alias }), 404, '{"message":"Channel not found"}');
  expectHTTP(await srv.http('GET', '/v1/players/identify?service=username', game.key), 400,
    '{"errors":{"identifier":["identifier is missing from the request query"]}}');
  expectHTTP(await srv.http('GET', '/v1/players/identify?service=username&identifier=nobody', none), 404,
    '{"message":"Player not found. Use an access key with the write:players scope to automatically create players"}');
  expectHTTP(await srv.http('POST', '/v1/players/socket-token', none, { headers: alias }), 403,
    '{"message":"Missing access key scope(s): write:players"}');
  // Trailing slash stripped (Godot calls /v1/game-config/).
  expectHTTP(await srv.http('GET', '/v1/game-config/', game.key), 403, '{"message":"Missing access key scope(s): read:gameConfig"}');
});
