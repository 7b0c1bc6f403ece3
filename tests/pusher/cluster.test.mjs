// Switchboard as a cluster: three nodes on one engine behave as one server
// to real clients spread over them (issue 8). Runs on every engine in
// PUSHER_CLUSTER_ENGINES (default redis,nats); Redis is Debian's
// redis-server, NATS the nodes' own embedded servers.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, WebhookReceiver, app, sdk, pusherJs, subscribed, connected, signedIn, record, dataOf, uid, eventually, withTimeout } from './harness.mjs';
import { ENGINES, NODE_TIMEOUT_MS, startCluster } from './cluster.mjs';

for (const engine of ENGINES) {
  describe(`cluster on ${engine}`, () => {
    let c;
    let hooks;
    const open = [];
    const raw = async (i) => {
      const cl = await RawClient.connect(c.nodes[i % 3].wsURL());
      open.push(cl);
      return cl;
    };
    const pj = (i, opts) => {
      const p = pusherJs(c.nodes[i % 3], opts);
      open.push(p);
      return p;
    };
    const rawSub = async (cl, channel, auth) => {
      cl.send({ event: 'pusher:subscribe', data: { channel, ...(auth || {}) } });
      await cl.take((m) => m?.event === 'pusher_internal:subscription_succeeded' && m.channel === channel, 5000, `subscribed ${channel}`);
    };

    before(async () => {
      hooks = await new WebhookReceiver().start();
      c = await startCluster(engine, {
        apps: [app({ webhooks: [{ url: hooks.url, event_types: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'] }] })],
        damon: { enabled: true, token: 'cluster-token' },
      });
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

    test('a publish on any node reaches every subscriber on every node exactly once, in order; socket_id exclusion crosses nodes', async () => {
      const ch = uid('news-');
      const subs = [await raw(0), await raw(1), await raw(2)];
      for (const s of subs) await rawSub(s, ch);
      for (let from = 0; from < 3; from++) {
        for (let k = 0; k < 10; k++) await sdk(c.nodes[from]).trigger(ch, 'ev', { from, k });
      }
      // Excluding node 2's subscriber, published through node 0.
      await sdk(c.nodes[0]).trigger(ch, 'ev', { from: 'excl', k: 0 }, { socket_id: subs[2].socketId });
      await sdk(c.nodes[1]).trigger(ch, 'done', {});
      for (const [i, s] of subs.entries()) {
        await s.expect('done', ch, 5000);
        const got = s.all((m) => m?.event === 'ev').map((m) => dataOf(m));
        // Ordered per publisher (the guarantee); publishers on different
        // nodes interleave as their broker paths deliver.
        for (const from of [0, 1, 2]) {
          assert.deepEqual(got.filter((d) => d.from === from).map((d) => d.k), [...Array(10).keys()], `node ${i}: events from node ${from}, each once, in order`);
        }
        assert.equal(got.filter((d) => d.from === 'excl').length, i === 2 ? 0 : 1, `node ${i}: the publication excluding node 2's socket`);
        assert.equal(got.length, i === 2 ? 30 : 31, `node ${i}: nothing else`);
      }
    });

    test('presence: one user on two nodes is one member everywhere; member_removed after the last connection anywhere', async () => {
      const ch = 'presence-' + uid();
      const ann = { user_id: 'ann', user_info: { name: 'Ann' } };
      const watcher = pj(2, { presence: () => ({ user_id: 'watcher' }) });
      const w = await subscribed(watcher, ch);
      const events = record(w.channel);
      const a1 = pj(0, { presence: () => ann });
      const a2 = pj(1, { presence: () => ann });
      await subscribed(a1, ch);
      const second = await subscribed(a2, ch);
      assert.deepEqual(Object.keys(second.data.members).sort(), ['ann', 'watcher'], 'node 1 sees both members');
      await eventually(() => events.some((e) => e.event === 'pusher:member_added' && e.data.id === 'ann'), { label: 'member_added on node 2' });
      // The REST view agrees on every node.
      for (const n of c.nodes) {
        const users = await sdk(n).get({ path: `/channels/${ch}/users` }).then((r) => r.json());
        assert.deepEqual(users.users.map((u) => u.id).sort(), ['ann', 'watcher']);
      }
      a1.unsubscribe(ch);
      await sdk(c.nodes[0]).trigger(ch, 'marker', {});
      await eventually(() => events.some((e) => e.event === 'marker'), { label: 'marker' });
      assert.equal(events.filter((e) => e.event === 'pusher:member_removed').length, 0, 'ann still has a tab on node 1');
      a2.unsubscribe(ch);
      await eventually(() => events.some((e) => e.event === 'pusher:member_removed' && e.data.id === 'ann'), { label: 'member_removed' });
      assert.equal(events.filter((e) => e.event === 'pusher:member_added' && e.data.id === 'ann').length, 1, 'member_added once');
      const hooksFor = (name) => hooks.events().filter((e) => e.name === name && e.channel === ch && e.user_id === 'ann');
      await eventually(() => hooksFor('member_removed').length === 1, { timeout: 10000, label: 'member_removed webhook' });
      assert.equal(hooksFor('member_added').length, 1, 'member_added webhook once per cluster');
    });

    test('occupied and vacated webhooks: once per cluster under simultaneous subscribe/unsubscribe on three nodes', async () => {
      const ch = uid('race-');
      const subs = [await raw(0), await raw(1), await raw(2)];
      const rounds = Number(process.env.PUSHER_CLUSTER_ROUNDS || 50);
      for (let r = 0; r < rounds; r++) {
        await Promise.all(subs.map((s) => rawSub(s, ch)));
        await Promise.all(
          subs.map(async (s) => {
            s.send({ event: 'pusher:unsubscribe', data: { channel: ch } });
            await s.ping();
          }),
        );
      }
      // Every node's view: the channel is vacated.
      for (const n of c.nodes) {
        await eventually(async () => {
          const r = await sdk(n).get({ path: `/channels/${ch}` }).then((x) => x.json());
          return r.occupied === false;
        }, { label: 'vacated on every node' });
      }
      const count = (name) => hooks.events().filter((e) => e.name === name && e.channel === ch).length;
      // channel_vacated is sent after a 3 s grace (a quick re-occupy on
      // the same node cancels the pair): wait for the last one.
      await eventually(() => count('channel_vacated') === count('channel_occupied') && count('channel_occupied') > 0, { timeout: 15000, label: 'occupied = vacated' }).catch(() => {});
      assert.ok(count('channel_occupied') > 0, 'the channel was occupied at least once');
      assert.equal(count('channel_vacated'), count('channel_occupied'), 'as many vacated as occupied webhooks');
      assert.ok(count('channel_occupied') <= rounds, `at most one occupied per round: ${count('channel_occupied')}`);
    });

    test('terminate_connections closes the user on every node; the cache answers on every node', async () => {
      const user = { id: uid('u-') };
      const tabs = [];
      for (let i = 0; i < 3; i++) {
        const p = pj(i, { user });
        await connected(p);
        await signedIn(p);
        tabs.push(p);
      }
      const states = tabs.map((p) => new Promise((r) => p.connection.bind('disconnected', r)));
      const res = await sdk(c.nodes[1]).terminateUserConnections(user.id);
      assert.equal(res.status, 200);
      await withTimeout(Promise.all(states), 5000, 'every tab disconnected');

      const ch = 'cache-' + uid();
      await sdk(c.nodes[0]).trigger(ch, 'last', { v: 1 });
      const s = await raw(2);
      await rawSub(s, ch);
      const cached = await s.expect('last', ch, 5000);
      assert.deepEqual(dataOf(cached), { v: 1 });
    });

    test('Damon GLOBAL, GROUP and DIRECT reach services on other nodes', async () => {
      const svc = async (i, group) => {
        const cl = await RawClient.connect(`ws://127.0.0.1:${c.nodes[i].port}/damon`, { established: false });
        open.push(cl);
        cl.send({ op: 1, data: { group, token: 'cluster-token' } });
        const ok = await cl.take((m) => m?.op === 1, 5000, 'IDENTIFY answer');
        return { cl, id: ok.data.id };
      };
      const a = await svc(0, 'g1');
      const b = await svc(1, 'g1');
      const d = await svc(2, 'g2');
      const next = (s, label) => s.cl.take((m) => m?.op === 0 || m?.op === 5, 5000, label);
      a.cl.send({ op: 0, event: 'hello', data: 1, intent: { target: 'GLOBAL' } });
      for (const s of [a, b, d]) assert.equal((await next(s, 'GLOBAL')).event, 'hello');
      a.cl.send({ op: 0, event: 'group', data: 2, intent: { target: 'GROUP', identifier: 'g1' } });
      a.cl.send({ op: 0, event: 'direct', data: 3, intent: { target: 'DIRECT', identifier: d.id } });
      assert.equal((await next(b, 'GROUP on node 1')).event, 'group');
      // d (group g2) gets the DIRECT next, not the GROUP message.
      assert.equal((await next(d, 'DIRECT on node 2')).event, 'direct');
      assert.equal((await next(a, 'GROUP back to its sender')).event, 'group');
    });

    test('a node paused past node_timeout is reaped, then fences itself on waking: its clients get 4200', async () => {
      const ch = 'presence-' + uid();
      const watcher = pj(0, { presence: () => ({ user_id: 'w2' }) });
      const events = record((await subscribed(watcher, ch)).channel);
      const sleeper = await raw(1);
      const pd = { user_id: 'sleeper' };
      const auth = sdk(c.nodes[1]).authorizeChannel(sleeper.socketId, ch, pd);
      await rawSub(sleeper, ch, { auth: auth.auth, channel_data: auth.channel_data });
      await eventually(() => events.some((e) => e.event === 'pusher:member_added' && e.data.id === 'sleeper'), { label: 'sleeper added' });
      c.nodes[1].proc.kill('SIGSTOP');
      try {
        await eventually(() => events.some((e) => e.event === 'pusher:member_removed' && e.data.id === 'sleeper'), { timeout: NODE_TIMEOUT_MS + 8000, label: 'the paused node reaped' });
      } finally {
        c.nodes[1].proc.kill('SIGCONT');
      }
      const closed = await sleeper.waitClose(10000);
      assert.equal(closed.code, 4200, 'a fenced node asks its clients to reconnect');
      // The node rejoined under a new id: a new client there works, and
      // the watcher saw the sleeper leave once.
      const fresh = await raw(1);
      await rawSub(fresh, uid('after-'));
      assert.equal(events.filter((e) => e.event === 'pusher:member_removed' && e.data.id === 'sleeper').length, 1);
    });

    test(`a node killed with SIGKILL: its members leave everywhere, once (the delay after the kill is printed)`, async () => {
      const ch = 'presence-' + uid();
      const watcher = pj(0, { presence: () => ({ user_id: 'w' }) });
      const events = record((await subscribed(watcher, ch)).channel);
      const ghost = pj(2, { presence: () => ({ user_id: 'ghost' }) });
      await subscribed(ghost, ch);
      await eventually(() => events.some((e) => e.event === 'pusher:member_added' && e.data.id === 'ghost'), { label: 'ghost added' });
      ghost.connection.unbind(); // the node dies; the client would reconnect elsewhere
      const killed = Date.now();
      await c.nodes[2].stop('SIGKILL');
      await eventually(() => events.some((e) => e.event === 'pusher:member_removed' && e.data.id === 'ghost'), { timeout: NODE_TIMEOUT_MS + 8000, label: 'ghost removed' });
      const took = Date.now() - killed;
      console.log(`# ${engine}: member_removed ${took} ms after SIGKILL (node_timeout ${NODE_TIMEOUT_MS} ms)`);
      await eventually(() => hooks.events().some((e) => e.name === 'member_removed' && e.channel === ch && e.user_id === 'ghost'), { timeout: 10000, label: 'member_removed webhook' });
      const users = await sdk(c.nodes[1]).get({ path: `/channels/${ch}/users` }).then((r) => r.json());
      assert.deepEqual(users.users.map((u) => u.id), ['w']);
    });
  });
}
