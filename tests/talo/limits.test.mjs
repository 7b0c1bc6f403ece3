// Limits, on a server of their own with small ones: the socket rate limit
// (RATE_LIMIT_EXCEEDED warnings, then close 1008) and the HTTP route limits
// (429 with Retry-After; the health check exempt).
import { test, before } from 'node:test';
import { startServer, expectHTTP, errFrame } from './harness.mjs';

let srv;
let game;
before(async () => {
  srv = await startServer({
    talo: {
      http_rate_limits: true, http_limit_auth: 3, http_limit_default: 2, http_limit_window: '1h',
      socket_limit_unidentified: 2, socket_max_warnings: 3,
    },
  });
  game = srv.provision('limits-game', ['read:players', 'write:players', 'read:gameConfig']);
});

test('socket rate limit: three RATE_LIMIT_EXCEEDED, then close 1008; heartbeats count', async () => {
  const c = await srv.connect(game.key); // ticket: auth request 1
  c.send('v1.heartbeat');
  const echo = await c.next();
  if (echo.text !== 'v1.heartbeat') throw new Error(`echo ${echo.text}`);
  c.send('x');
  await c.expect(errFrame('unknown', 'An error occurred while routing the message', 'ROUTING_ERROR'));
  for (let i = 0; i < 3; i++) {
    c.send('v1.heartbeat');
    await c.expect(errFrame('unknown', 'Rate limit exceeded', 'RATE_LIMIT_EXCEEDED'));
  }
  c.send('v1.heartbeat');
  const { code, reason } = await c.closed;
  if (code !== 1008 || reason !== 'RATE_LIMIT_EXCEEDED') throw new Error(`close ${code} ${reason}`);
});

test('HTTP rate limits: 429 with Retry-After per route bucket; the health check is exempt', async () => {
  await srv.ticket(game.key); // auth request 2 (the first test used 1)
  await srv.ticket(game.key); // 3
  const r = await srv.http('POST', '/v1/socket-tickets', game.key, { body: '' });
  expectHTTP(r, 429, '{"message":"Too many requests"}');
  if (r.headers.get('retry-after') !== '3600') throw new Error(`Retry-After ${r.headers.get('retry-after')}`);
  for (let i = 0; i < 2; i++) {
    expectHTTP(await srv.http('GET', '/v1/game-config', game.key), 200, '{"config":[]}');
  }
  expectHTTP(await srv.http('GET', '/v1/game-config', game.key), 429, '{"message":"Too many requests"}');
  for (let i = 0; i < 4; i++) expectHTTP(await srv.http('GET', '/v1/health-check', game.key), 204, '');
});
