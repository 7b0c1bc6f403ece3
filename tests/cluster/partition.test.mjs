// A network partition of one node (issue 8, failure test 1): each node
// reaches its broker (redis-server, or one external nats-server) through
// its own TCP proxy; cutting node 2's proxy cuts it off. The others reap it
// within node_timeout + 1 s (member_removed, channel_vacated); once the cut
// heals, node 2 finds itself reaped, closes its clients with 4200 and
// rejoins under a new identity, and its reconnected clients leave no
// ghost or duplicate member anywhere.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, WebhookReceiver, app, sdk, pusherJs, subscribed, record, uid, eventually, SCALE } from '../pusher/harness.mjs';
import { NODE_TIMEOUT_MS, engines, startFailCluster } from './lib.mjs';
import { deliveryResumes, presenceEverywhere, webhookRunsAlternate } from './checks.mjs';

for (const engine of engines(['redis', 'nats-external'])) {
  describe(`partition of one node on ${engine}`, () => {
    let c;
    let hooks;
    const open = [];
    before(async () => {
      hooks = await new WebhookReceiver().start();
      c = await startFailCluster(engine, { apps: [app({ webhooks: [{ url: hooks.url, event_types: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'] }] })] }, { proxied: true });
    });
    after(async () => {
      for (const x of open.splice(0)) {
        try {
          x.disconnect ? x.disconnect() : x.close();
        } catch {}
      }
      await c?.stop();
      await hooks?.stop();
    });

    test('the cut-off node is reaped in time, fences on heal with 4200 and rejoins without ghosts', async () => {
      const ch = 'presence-' + uid();
      const solo = uid('solo-'); // subscribed on the cut-off node only
      const pj = (i, user) => {
        const p = pusherJs(c.nodes[i], { presence: () => ({ user_id: user, user_info: { n: i } }) });
        open.push(p);
        return p;
      };
      const watcher = pj(0, 'w0');
      const events = record((await subscribed(watcher, ch)).channel);
      await subscribed(pj(1, 'w1'), ch);
      // On node 2: a raw client (to read its close code) and a pusher-js
      // client that reconnects by itself after the fence.
      const raw = await RawClient.connect(c.nodes[2].wsURL());
      open.push(raw);
      const a = sdk(c.nodes[2]).authorizeChannel(raw.socketId, ch, { user_id: 'cut-raw' });
      await raw.subscribe(ch, { auth: a.auth, channel_data: a.channel_data });
      await raw.subscribe(solo);
      const back = pj(2, 'cut-pj');
      await subscribed(back, ch);
      for (const u of ['w1', 'cut-raw', 'cut-pj']) {
        await eventually(() => events.some((e) => e.event === 'pusher:member_added' && e.data.id === u), { label: `member_added ${u}` });
      }

      const cutAt = Date.now();
      c.proxies[2].cutOff();
      const removed = (u) => events.find((e) => e.event === 'pusher:member_removed' && e.data.id === u);
      await eventually(() => removed('cut-raw') && removed('cut-pj'), { timeout: NODE_TIMEOUT_MS + 8000, label: 'the cut-off node reaped' });
      const reapMs = Math.max(removed('cut-raw').at, removed('cut-pj').at) - cutAt;
      console.log(`# ${engine}: member_removed on node 0 ${reapMs} ms after the cut (node_timeout ${NODE_TIMEOUT_MS} ms)`);
      // The spec's promise, with the machine's slowness factor on the +1 s.
      assert.ok(reapMs <= NODE_TIMEOUT_MS + 1000 * SCALE, `reaped ${reapMs} ms after the cut: want node_timeout + 1 s`);
      // Node 0 and 1 agree the cut-off members are gone.
      for (const i of [0, 1]) await presenceEverywhere([c.nodes[i]], ch, ['w0', 'w1']);
      await hooks.waitFor((e) => e.name === 'channel_vacated' && e.channel === solo, 10000, 'channel_vacated for the channel only node 2 had');

      const healAt = Date.now();
      c.proxies[2].heal();
      const closed = await raw.waitClose(NODE_TIMEOUT_MS + 8000);
      console.log(`# ${engine}: node 2 fenced (close ${closed.code}) ${Date.now() - healAt} ms after the heal`);
      assert.equal(closed.code, 4200, 'the fenced node asks its clients to reconnect');
      // pusher-js reconnects to node 2, now under a new id, and subscribes
      // again: one member_added more, seen on node 0.
      await eventually(() => events.filter((e) => e.event === 'pusher:member_added' && e.data.id === 'cut-pj').length === 2, { timeout: 10000, label: 'cut-pj added again after the rejoin' });
      await presenceEverywhere(c.nodes, ch, ['cut-pj', 'w0', 'w1']);
      // Delivery across the healed link, both ways.
      const got = record(back.channel(ch));
      // Node 2's pub/sub connection may still be coming back (delivery is
      // at most once meanwhile): publish until one arrives.
      const resumed = await deliveryResumes(c.nodes[0], ch, 'after-heal', () => got.some((e) => e.event === 'after-heal'));
      console.log(`# ${engine}: node 0 -> node 2 delivery ${resumed} ms after the rejoined client subscribed`);
      await deliveryResumes(c.nodes[2], ch, 'from-2', () => events.some((e) => e.event === 'from-2'));
      // Every member's webhooks alternate added/removed and end in its
      // final state; the reaped channel was vacated once.
      await webhookRunsAlternate(hooks, ch, { 'w0': true, 'w1': true, 'cut-pj': true, 'cut-raw': false });
      assert.equal(hooks.events().filter((e) => e.name === 'channel_vacated' && e.channel === solo).length, 1);
    });
  });
}
