// Rolling restart under a reconnect storm (issue 8, failure test 4): each
// of 3 nodes in turn gets SIGTERM (its clients get 4200 and reconnect to
// the live nodes, as pusher-js would) and is started again. Meanwhile a
// publisher sends numbered events on every channel through a node that is
// not being stopped. Checked: no session (one connection's subscription)
// misses an accepted event between the first and last it received, nobody
// gets one twice, every connected client gets the final marker, presence
// lists agree on every node at the end, and every member's and channel's
// webhooks alternate (no duplicate, no ghost).
//
// CLUSTER_STORM connections (default 300; CLUSTER_FULL=1: 5,000), spread
// over the nodes; CLUSTER_STORM_PRESENCE of them (default 30) are members
// of one presence channel.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { WebhookReceiver, app, sdk, uid, eventually, sleep } from '../pusher/harness.mjs';
import { engines, startFailCluster } from './lib.mjs';
import { presenceEverywhere, webhookRunsAlternate } from './checks.mjs';

const WebSocket = createRequire(new URL('../pusher/package.json', import.meta.url))('ws');

const STORM = Number(process.env.CLUSTER_STORM || (process.env.CLUSTER_FULL ? 5000 : 300));
const PRESENCE = Math.min(STORM, Number(process.env.CLUSTER_STORM_PRESENCE || 30));
const CHANNELS = 10;

/**
 * One client that reconnects to a live node whenever its connection
 * closes (after a random delay up to 1 s, like pusher-js's backoff on
 * 4200) and subscribes again. Each connection's received events are one
 * session.
 */
class StormClient {
  constructor(k, pick, signer, presenceCh) {
    this.k = k;
    this.pick = pick;
    this.signer = signer;
    this.channel = `storm-${k % CHANNELS}`;
    this.user = k < PRESENCE ? `p${k}` : null;
    this.presenceCh = presenceCh;
    this.sessions = [];
    this.subscribed = false;
    this.stopping = false;
    this.closes = [];
    this.presenceErrors = 0;
  }

  connect() {
    const srv = this.pick();
    const ws = new WebSocket(srv.wsURL());
    const session = { port: srv.port, got: {}, dup: 0, subscribedAt: 0 };
    this.ws = ws;
    ws.on('message', (raw) => {
      let m;
      try {
        m = JSON.parse(raw);
      } catch {
        return;
      }
      if (m.event === 'pusher:connection_established') {
        const socketId = JSON.parse(m.data).socket_id;
        ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: this.channel } }));
        this.joinPresence = () => {
          const a = this.signer.authorizeChannel(socketId, this.presenceCh, { user_id: this.user });
          ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: this.presenceCh, auth: a.auth, channel_data: a.channel_data } }));
        };
        if (this.user) this.joinPresence();
      } else if (m.event === 'pusher_internal:subscription_succeeded' && m.channel === this.channel) {
        session.subscribedAt = Date.now();
        this.sessions.push(session);
        session.main = true;
        this.subscribed = !this.user || session.member;
      } else if (m.event === 'pusher_internal:subscription_succeeded' && m.channel === this.presenceCh) {
        session.member = true;
        this.subscribed = !!session.main;
      } else if (m.event === 'pusher:subscription_error' && m.channel === this.presenceCh) {
        // "Subscription failed; try again" (the store timed out while a
        // stream leader moved): what an app does, after a pause.
        this.presenceErrors++;
        setTimeout(() => ws.readyState === WebSocket.OPEN && this.joinPresence(), 500);
      } else if (m.event === 'seq' || m.event === 'final') {
        const seq = JSON.parse(m.data).seq;
        const set = (session.got[m.event] ??= new Set());
        if (set.has(seq)) session.dup++;
        set.add(seq);
      }
    });
    ws.on('error', () => {});
    ws.on('close', (code) => {
      this.subscribed = false;
      this.closes.push(code);
      if (this.stopping) return;
      setTimeout(() => this.connect(), Math.random() * 1000);
    });
  }

  stop() {
    this.stopping = true;
    this.ws?.terminate();
  }
}

for (const engine of engines(['redis', 'nats'])) {
  describe(`rolling SIGTERM restart of 3 ${engine} nodes with ${STORM} reconnecting clients`, () => {
    let c;
    let hooks;
    const clients = [];
    before(async () => {
      hooks = await new WebhookReceiver().start();
      c = await startFailCluster(engine, {
        apps: [app({ webhooks: [{ url: hooks.url, event_types: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'] }] })],
        shutdown: { timeout: '10s' },
      });
    });
    after(async () => {
      for (const cl of clients) cl.stop();
      await c?.stop();
      await hooks?.stop();
    });

    test('no event lost for connected subscribers, presence and webhooks exact at the end', async () => {
      const presenceCh = 'presence-' + uid('storm-');
      const down = new Set(); // node indexes being stopped or restarted
      let rr = 0;
      const pick = () => {
        const live = [0, 1, 2].filter((i) => !down.has(i) && !c.nodes[i].exitInfo);
        return c.nodes[live[rr++ % live.length]];
      };
      const signer = sdk(c.nodes[0]);
      for (let k = 0; k < STORM; k++) clients.push(new StormClient(k, pick, signer, presenceCh));
      // Connect in batches: a storm, not a denial of service on the test itself.
      for (let k = 0; k < STORM; k += 250) {
        clients.slice(k, k + 250).forEach((cl) => cl.connect());
        await eventually(() => clients.slice(0, k + 250).every((cl) => cl.subscribed), { timeout: 30000, label: `clients up to ${k + 250} subscribed` });
      }
      await presenceEverywhere(c.nodes, presenceCh, clients.filter((cl) => cl.user).map((cl) => cl.user), 30000);

      // The publisher: one numbered event per channel in turn, through a
      // node that is not being stopped (publications sent to a node while
      // it shuts down are its clients' loss, not this test's subject).
      const accepted = Array.from({ length: CHANNELS }, () => new Set());
      let publishing = true;
      let via = 1;
      const publisher = (async () => {
        for (let seq = 0; publishing; seq++) {
          const ch = seq % CHANNELS;
          try {
            const r = await sdk(c.nodes[via]).trigger(`storm-${ch}`, 'seq', { seq });
            if (r.status === 200) accepted[ch].add(seq);
          } catch {}
          await sleep(20);
        }
      })();

      const resubscribeMs = [];
      for (let i = 0; i < 3; i++) {
        via = (i + 1) % 3;
        await sleep(300); // publications through the last node have landed
        down.add(i);
        const t0 = Date.now();
        await c.nodes[i].stop('SIGTERM');
        await eventually(() => clients.every((cl) => cl.subscribed), { timeout: 60000, label: `every client resubscribed after node ${i} stopped` });
        resubscribeMs.push(Date.now() - t0);
        await c.restart(i);
        down.delete(i);
      }
      publishing = false;
      await publisher;
      const presenceErrors = clients.reduce((n, cl) => n + cl.presenceErrors, 0);
      console.log(`# ${engine}: ${STORM} clients; all resubscribed ${resubscribeMs.join('/')} ms after SIGTERM of node 0/1/2; ${accepted.reduce((n, s) => n + s.size, 0)} events published; ${presenceErrors} presence joins refused with "try again"`);
      // Clients reconnect within 1 s (their back-off); a subscribe must
      // not wait on the node that left. On NATS one SIGTERM in three took
      // 5.1-5.8 s while a store request lost at a departing stream leader
      // waited out its 5 s deadline (now 1.0-1.3 s; docs/cluster.md).
      if (STORM <= 300) {
        assert.ok(resubscribeMs.every((ms) => ms < 4000), `every client resubscribed within 4 s of each SIGTERM: ${resubscribeMs.join('/')} ms`);
      }

      // Every client still connected gets the final marker on its channel.
      await sleep(300);
      for (let ch = 0; ch < CHANNELS; ch++) await sdk(c.nodes[ch % 3]).trigger(`storm-${ch}`, 'final', { seq: ch });
      await eventually(() => clients.every((cl) => cl.sessions.at(-1)?.got.final?.has(cl.k % CHANNELS)), { timeout: 20000, label: 'the final marker on every client' });

      // No loss inside a session, no duplicate.
      let sessions = 0;
      const problems = [];
      for (const cl of clients) {
        for (const s of cl.sessions) {
          sessions++;
          const got = s.got.seq ?? new Set();
          if (s.dup) problems.push(`client ${cl.k} on ${s.port}: ${s.dup} duplicates`);
          if (got.size === 0) continue;
          const lo = Math.min(...got);
          const hi = Math.max(...got);
          const missing = [...accepted[cl.k % CHANNELS]].filter((q) => q > lo && q < hi && !got.has(q));
          if (missing.length) problems.push(`client ${cl.k} on ${s.port}: missed ${missing.slice(0, 5).join(',')} (${missing.length}) between ${lo} and ${hi}`);
        }
      }
      assert.deepEqual(problems.slice(0, 10), [], `${problems.length} sessions of ${sessions} lost or repeated events`);
      const reconnects = clients.reduce((n, cl) => n + cl.closes.length, 0);
      assert.ok(reconnects >= STORM / 2, `the restarts moved clients (${reconnects} reconnects)`);
      assert.ok(clients.every((cl) => cl.closes.every((code) => code === 4200)), `every close was a 4200 reconnect: ${[...new Set(clients.flatMap((cl) => cl.closes))]}`);

      // Presence and webhooks.
      const users = clients.filter((cl) => cl.user).map((cl) => cl.user);
      await presenceEverywhere(c.nodes, presenceCh, users, 30000);
      // Members' webhooks alternate by time_ms. They did not, in about one
      // NATS run in three and rarely on Redis, while a held removal's
      // time_ms was its send time (docs/cluster.md).
      await webhookRunsAlternate(hooks, presenceCh, Object.fromEntries(users.map((u) => [u, true])), 30000);
      for (let ch = 0; ch < CHANNELS; ch++) {
        const seq = hooks
          .events()
          .filter((e) => e.channel === `storm-${ch}` && (e.name === 'channel_occupied' || e.name === 'channel_vacated'))
          .sort((a, b) => (a._req.body?.time_ms ?? 0) - (b._req.body?.time_ms ?? 0) || a._req.at - b._req.at)
          .map((e) => (e.name === 'channel_occupied' ? '+' : '-'));
        seq.forEach((s, i) => assert.equal(s, i % 2 === 0 ? '+' : '-', `storm-${ch}: occupied/vacated alternate: ${seq.join('')}`));
        assert.equal(seq.at(-1), '+', `storm-${ch} ends occupied`);
      }
    });
  });
}
