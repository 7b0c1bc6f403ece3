// The broker restarts under a running 3-node cluster (issue 8, failure
// test 3): one external nats-server, or redis-server, is killed and
// started again on the same port. Both keep their state in memory only
// (the engine's JetStream streams use memory storage; this redis-server
// has no persistence), so the store comes back empty: every node finds its
// record gone, fences (4200), rejoins, and the clients (pusher-js, which
// reconnects by itself) rebuild their state. Delivery must resume within
// 2 s of the server being back, and presence must agree everywhere after.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebhookReceiver, app, pusherJs, subscribed, record, uid, eventually, SCALE } from '../pusher/harness.mjs';
import { NODE_TIMEOUT_MS, engines, startFailCluster } from './lib.mjs';
import { deliveryResumes, presenceEverywhere } from './checks.mjs';

for (const engine of engines(['nats-external', 'redis'])) {
  describe(`${engine === 'redis' ? 'redis-server' : 'external nats-server'} restart`, () => {
    let c;
    let hooks;
    const open = [];
    before(async () => {
      hooks = await new WebhookReceiver().start();
      c = await startFailCluster(engine, { apps: [app({ webhooks: [{ url: hooks.url, event_types: ['member_added', 'member_removed'] }] })] });
    });
    after(async () => {
      for (const x of open.splice(0)) {
        try {
          x.disconnect();
        } catch {}
      }
      await c?.stop();
      await hooks?.stop();
    });

    test('delivery resumes within 2 s of the server being back; presence agrees everywhere after', async () => {
      const ch = 'presence-' + uid();
      const clients = [];
      for (let i = 0; i < 3; i++) {
        const p = pusherJs(c.nodes[i], { presence: () => ({ user_id: `u${i}` }) });
        open.push(p);
        const { channel } = await subscribed(p, ch);
        clients.push({ p, events: record(channel), codes: [] });
        p.connection.bind('error', (e) => clients[i].codes.push(e?.data?.code));
      }
      await presenceEverywhere(c.nodes, ch, ['u0', 'u1', 'u2']);
      const hooksFor = (name, u) => hooks.events().filter((e) => e.name === name && e.channel === ch && e.user_id === u).length;

      await c.broker.stop();
      // Down for longer than the node timeout: no node may reap another
      // meanwhile (none of them has healthy heartbeats).
      await new Promise((r) => setTimeout(r, NODE_TIMEOUT_MS + 500));
      await c.broker.start();
      const backAt = Date.now();
      // Every node's subscriber gets a publication from another node.
      const resumed = [];
      for (let i = 0; i < 3; i++) {
        const from = c.nodes[(i + 1) % 3];
        const ev = `after-${i}`;
        const got = clients[i].events;
        await deliveryResumes(from, ch, ev, () => got.some((e) => e.event === ev), 10000 * SCALE);
        resumed.push(Date.now() - backAt);
      }
      console.log(`# ${engine}: delivery to the subscriber on node 0/1/2 resumed ${resumed.join('/')} ms after the server was back; reconnect codes seen ${JSON.stringify(clients.map((x) => x.codes))}`);
      assert.ok(resumed[0] <= 2000 * SCALE, `delivery resumed ${resumed[0]} ms after the server was back: want 2 s`);
      await presenceEverywhere(c.nodes, ch, ['u0', 'u1', 'u2']);
      // The store forgot everyone, so each member is added again once (one
      // member_added per store lifetime), and nobody left: no removal.
      await eventually(() => ['u0', 'u1', 'u2'].every((u) => hooksFor('member_added', u) === 2), { timeout: 10000, label: 'member_added again after the rejoin' });
      await new Promise((r) => setTimeout(r, 3500)); // a removal would be held 3 s before it is sent
      for (const u of ['u0', 'u1', 'u2']) {
        assert.equal(hooksFor('member_added', u), 2, `${u}: member_added before the restart and once after`);
        assert.equal(hooksFor('member_removed', u), 0, `${u} never left`);
      }
      // Every node serves new work.
      const late = pusherJs(c.nodes[2], { presence: () => ({ user_id: 'late' }) });
      open.push(late);
      await subscribed(late, ch);
      await presenceEverywhere(c.nodes, ch, ['late', 'u0', 'u1', 'u2']);
      await eventually(() => clients[0].events.some((e) => e.event === 'pusher:member_added' && e.data.id === 'late'), { label: 'late added on node 0' });
    });
  });
}
