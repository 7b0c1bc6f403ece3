// Graceful shutdown (spec §1.5, checklist "4200 on graceful shutdown"):
// on SIGTERM every client gets pusher:error 4200 and a close 4200, and the
// process exits cleanly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCALE, startServer, app, RawClient, sdk, pusherJs, connected, dataOf, uid, sleep, withTimeout } from './harness.mjs';

test('SIGTERM: clients get pusher:error 4200 then close 4200; the server exits 0', async () => {
  const srv = await startServer({ apps: [app()], shutdown: { timeout: '5s' } });
  const p = pusherJs(srv);
  try {
    const s = sdk(srv);
    const a = await RawClient.connect(srv.wsURL());
    const b = await RawClient.connect(srv.wsURL());
    const ch = uid('presence-bye-');
    await a.subscribe(ch, s.authorizeChannel(a.socketId, ch, { user_id: 'a' }));
    await b.subscribe(uid('public-bye-'));
    await connected(p);
    const states = [];
    p.connection.bind('state_change', (st) => states.push(st.current));

    const t0 = Date.now();
    srv.proc.kill('SIGTERM');
    for (const c of [a, b]) {
      const closed = await c.waitClose(6000);
      assert.equal(closed.code, 4200, `close code (reason ${JSON.stringify(closed.reason)})`);
      const errs = c.all((m) => m?.event === 'pusher:error');
      assert.equal(errs.length, 1, `one pusher:error before the close: ${c.dump()}`);
      assert.equal(dataOf(errs[0]).code, 4200);
    }
    const exit = await withTimeout(srv.exited, 8000, 'server exit');
    assert.equal(exit.code, 0, `exit status ${JSON.stringify(exit)}\n${srv.logs()}`);
    assert.ok(Date.now() - t0 < 8000 * SCALE);
    // pusher-js saw the 4200 and tries to reconnect (state leaves 'connected').
    await sleep(200);
    assert.ok(states.length > 0 && states[0] !== 'connected', `pusher-js reacted: ${states.join(',')}`);
  } finally {
    p.disconnect();
    await srv.stop('SIGKILL');
  }
});

test('SIGTERM with no clients exits promptly with status 0', async () => {
  const srv = await startServer({ apps: [app()] });
  const t0 = Date.now();
  srv.proc.kill('SIGTERM');
  const exit = await withTimeout(srv.exited, 8000, 'server exit');
  assert.equal(exit.code, 0);
  assert.ok(Date.now() - t0 < 3000 * SCALE, `took ${Date.now() - t0} ms`);
});
