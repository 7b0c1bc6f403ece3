// Webhooks (spec §3), verified with the SDK's pusher.webhook(request):
// signature validity, event payloads, the ~3 s anti-flap delay on
// channel_vacated / member_removed, per-hook event_types / filter / headers,
// and retries after a failed delivery.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Clients, SCALE, startServer, app, RawClient, sdk, uid, sleep, eventually, WebhookReceiver, DEFAULT_APP } from './harness.mjs';

let srv;
let s;
let recv;
let filtered;
let flaky;
let batched;
const BATCH_APP = { id: 'batch-id', key: 'batch-key', secret: 'batch-secret' };
const FLAKY_APP = { id: 'flaky-id', key: 'flaky-key', secret: 'flaky-secret' };
const clients = new Clients(() => srv);
const raw = (key) => clients.raw(key);
const evs = (r, pred) => r.events().filter(pred);
const strip = ({ _req, ...e }) => e;

before(async () => {
  recv = await new WebhookReceiver().start();
  filtered = await new WebhookReceiver().start();
  let failures = 0;
  flaky = await new WebhookReceiver({ status: () => (failures++ < 1 ? 500 : 200) }).start();
  batched = await new WebhookReceiver().start();
  srv = await startServer({
    apps: [
      app({
        subscription_count: true,
        webhooks: [
          { url: recv.url },
          { url: filtered.url, event_types: ['channel_occupied'], filter: { channel_name_starts_with: 'filtered-' }, headers: { 'X-Custom-Header': 'custom-value' } },
        ],
      }),
      app({ ...FLAKY_APP, webhooks: [{ url: flaky.url, event_types: ['channel_occupied'] }] }),
      app({ ...BATCH_APP, webhook_batching: true, webhooks: [{ url: batched.url, event_types: ['channel_occupied'] }] }),
    ],
  });
  s = sdk(srv);
});
after(async () => {
  clients.closeAll();
  await srv?.stop();
  await Promise.all([recv?.stop(), filtered?.stop(), flaky?.stop(), batched?.stop()]);
});

function assertValid(ev, secretApp = DEFAULT_APP) {
  const req = ev._req;
  const wh = sdk(srv, secretApp).webhook({ headers: req.headers, rawBody: req.rawBody });
  assert.equal(wh.isValid(), true, `webhook signature valid: ${JSON.stringify(req.headers)} ${req.rawBody}`);
  assert.equal(req.headers['x-pusher-key'], secretApp.key);
  assert.match(req.headers['content-type'], /^application\/json/);
  assert.equal(req.method, 'POST');
  assert.equal(typeof req.body.time_ms, 'number');
  assert.ok(Math.abs(req.body.time_ms - Date.now()) < 60000, 'time_ms is now-ish, in milliseconds');
  assert.ok(wh.getEvents().some((e) => JSON.stringify(e) === JSON.stringify(strip(ev))), 'getEvents() contains the event');
  return wh;
}

test('channel_occupied on the first subscriber only; channel_vacated ~3 s after the last leaves', async () => {
  const ch = uid('wh-occ-');
  const a = await raw();
  const b = await raw();
  await a.subscribe(ch);
  const occ = await recv.waitFor((e) => e.name === 'channel_occupied' && e.channel === ch, 3000, 'channel_occupied');
  assert.deepEqual(strip(occ), { name: 'channel_occupied', channel: ch });
  assertValid(occ);
  await b.subscribe(ch);
  a.unsubscribe(ch);
  await a.ping();
  const left = Date.now();
  b.close();
  const vac = await recv.waitFor((e) => e.name === 'channel_vacated' && e.channel === ch, 8000, 'channel_vacated');
  const delay = vac._req.at - left;
  assert.ok(delay >= 2500, `vacated is delayed ~3 s (came after ${delay} ms)`);
  assert.ok(delay < 4000 + 3000 * SCALE, `vacated came in time (${delay} ms)`);
  assert.deepEqual(strip(vac), { name: 'channel_vacated', channel: ch });
  assertValid(vac);
  assert.equal(evs(recv, (e) => e.name === 'channel_occupied' && e.channel === ch).length, 1);
  assert.equal(evs(recv, (e) => e.name === 'channel_vacated' && e.channel === ch).length, 1);
});

test('anti-flap: leaving and coming back within the delay sends neither vacated nor a second occupied', async () => {
  const ch = uid('wh-flap-');
  const a = await raw();
  await a.subscribe(ch);
  await recv.waitFor((e) => e.name === 'channel_occupied' && e.channel === ch, 3000);
  a.close();
  await sleep(500);
  const b = await raw();
  await b.subscribe(ch);
  await sleep(4500);
  assert.deepEqual(evs(recv, (e) => e.channel === ch && e.name !== 'subscription_count').map(strip), [{ name: 'channel_occupied', channel: ch }]);
});

test('member_added once per user; member_removed ~3 s after the last connection of the user leaves', async () => {
  const ch = uid('presence-wh-');
  const u1 = await raw();
  const u1b = await raw();
  await u1.subscribe(ch, s.authorizeChannel(u1.socketId, ch, { user_id: 'wh-user', user_info: { n: 1 } }));
  const added = await recv.waitFor((e) => e.name === 'member_added' && e.channel === ch, 3000, 'member_added');
  assert.deepEqual(strip(added), { name: 'member_added', channel: ch, user_id: 'wh-user' });
  assertValid(added);
  await u1b.subscribe(ch, s.authorizeChannel(u1b.socketId, ch, { user_id: 'wh-user', user_info: { n: 1 } }));
  u1.close();
  await sleep(3800);
  assert.equal(evs(recv, (e) => e.name === 'member_removed' && e.channel === ch).length, 0, 'user still present on another connection');
  const left = Date.now();
  u1b.close();
  const removed = await recv.waitFor((e) => e.name === 'member_removed' && e.channel === ch, 8000, 'member_removed');
  const delay = removed._req.at - left;
  assert.ok(delay >= 2500 && delay < 4000 + 3000 * SCALE, `member_removed delayed ~3 s (${delay} ms)`);
  assert.deepEqual(strip(removed), { name: 'member_removed', channel: ch, user_id: 'wh-user' });
  assertValid(removed);
  assert.equal(evs(recv, (e) => e.name === 'member_added' && e.channel === ch).length, 1);
  assert.equal(evs(recv, (e) => e.name === 'member_removed' && e.channel === ch).length, 1);
});

test('anti-flap for members: a user who leaves and rejoins within the delay causes no member_removed and no second member_added', async () => {
  const ch = uid('presence-flap-');
  const keep = await raw();
  await keep.subscribe(ch, s.authorizeChannel(keep.socketId, ch, { user_id: 'stayer' }));
  const a = await raw();
  await a.subscribe(ch, s.authorizeChannel(a.socketId, ch, { user_id: 'flapper' }));
  await recv.waitFor((e) => e.name === 'member_added' && e.channel === ch && e.user_id === 'flapper', 3000);
  a.close();
  await sleep(500);
  const b = await raw();
  await b.subscribe(ch, s.authorizeChannel(b.socketId, ch, { user_id: 'flapper' }));
  await sleep(4500);
  assert.deepEqual(
    evs(recv, (e) => e.channel === ch && e.user_id === 'flapper').map(strip),
    [{ name: 'member_added', channel: ch, user_id: 'flapper' }],
  );
});

test('client_event: name, channel, event, data, socket_id (+ user_id on presence)', async () => {
  const ch = uid('private-wh-');
  const a = await raw();
  await a.subscribe(ch, s.authorizeChannel(a.socketId, ch));
  a.send({ event: 'client-ping', channel: ch, data: { x: 1 } });
  const ce = await recv.waitFor((e) => e.name === 'client_event' && e.channel === ch, 3000, 'client_event');
  assertValid(ce);
  assert.equal(ce.event, 'client-ping');
  assert.equal(ce.socket_id, a.socketId);
  assert.equal(typeof ce.data, 'string', 'data is a string');
  assert.deepEqual(JSON.parse(ce.data), { x: 1 });
  assert.equal(ce.user_id, undefined);

  const pch = uid('presence-whce-');
  const p = await raw();
  await p.subscribe(pch, s.authorizeChannel(p.socketId, pch, { user_id: 'talker' }));
  p.send({ event: 'client-say', channel: pch, data: 'hello' });
  const pe = await recv.waitFor((e) => e.name === 'client_event' && e.channel === pch, 3000, 'presence client_event');
  assertValid(pe);
  assert.deepEqual(strip(pe), { name: 'client_event', channel: pch, event: 'client-say', data: 'hello', socket_id: p.socketId, user_id: 'talker' });
});

test('cache_miss webhook on subscribing to an empty cache channel', async () => {
  const ch = uid('cache-wh-');
  const a = await raw();
  await a.subscribe(ch);
  await a.expect('pusher:cache_miss', ch);
  const cm = await recv.waitFor((e) => e.name === 'cache_miss' && e.channel === ch, 3000, 'cache_miss');
  assert.deepEqual(strip(cm), { name: 'cache_miss', channel: ch });
  assertValid(cm);
  // After a publish there is no miss any more.
  await s.trigger(ch, 'fill', {});
  const b = await raw();
  await b.subscribe(ch);
  await b.expect('fill', ch);
  await sleep(500);
  assert.equal(evs(recv, (e) => e.name === 'cache_miss' && e.channel === ch).length, 1);
});

test('subscription_count webhook carries the count', async () => {
  const ch = uid('wh-count-');
  const a = await raw();
  const b = await raw();
  await a.subscribe(ch);
  await recv.waitFor((e) => e.name === 'subscription_count' && e.channel === ch && e.subscription_count === 1, 3000, 'subscription_count 1');
  await b.subscribe(ch);
  const two = await recv.waitFor((e) => e.name === 'subscription_count' && e.channel === ch && e.subscription_count === 2, 3000, 'subscription_count 2');
  assert.deepEqual(strip(two), { name: 'subscription_count', channel: ch, subscription_count: 2 });
  assertValid(two);
  b.unsubscribe(ch);
  await eventually(() => evs(recv, (e) => e.name === 'subscription_count' && e.channel === ch && e.subscription_count === 1).length === 2, {
    timeout: 7000,
    label: 'subscription_count back to 1',
  });
});

test('per-hook event_types, channel filter and custom headers', async () => {
  const yes = uid('filtered-');
  const no = uid('unfiltered-');
  const a = await raw();
  await a.subscribe(yes);
  await a.subscribe(no);
  const got = await filtered.waitFor((e) => e.channel === yes, 3000, 'filtered hook event');
  assert.deepEqual(strip(got), { name: 'channel_occupied', channel: yes });
  assert.equal(got._req.headers['x-custom-header'], 'custom-value');
  assertValid(got);
  await recv.waitFor((e) => e.name === 'channel_occupied' && e.channel === no, 3000);
  await sleep(300);
  assert.deepEqual(
    filtered.events().map(strip).filter((e) => e.channel === yes || e.channel === no),
    [{ name: 'channel_occupied', channel: yes }],
    'only channel_occupied, only for channels starting with filtered-',
  );
  assert.ok(filtered.events().every((e) => e.name === 'channel_occupied' && e.channel.startsWith('filtered-')));
});

test('a failed delivery (HTTP 500) is retried', async () => {
  const ch = uid('retry-');
  const c = await raw(FLAKY_APP.key);
  await c.subscribe(ch);
  await flaky.waitFor((e) => e.channel === ch, 3000, 'first attempt');
  await new Promise((resolve, reject) => {
    const t0 = Date.now();
    const iv = setInterval(() => {
      const n = flaky.requests.filter((r) => r.rawBody.includes(ch)).length;
      if (n >= 2) {
        clearInterval(iv);
        resolve();
      } else if (Date.now() - t0 > 15000) {
        clearInterval(iv);
        reject(new Error(`no retry within 15 s after a 500 (attempts: ${n})`));
      }
    }, 50);
  });
  const attempts = flaky.requests.filter((r) => r.rawBody.includes(ch));
  for (const r of attempts) assert.equal(sdk(srv, FLAKY_APP).webhook({ headers: r.headers, rawBody: r.rawBody }).isValid(), true);
});

test('webhook_batching: several events in one signed request, none lost', async () => {
  const c = await raw(BATCH_APP.key);
  const names = Array.from({ length: 8 }, () => uid('batched-'));
  for (const n of names) c.send({ event: 'pusher:subscribe', data: { channel: n, auth: '' } });
  await eventually(() => names.every((n) => batched.events().some((e) => e.channel === n)), { label: 'all 8 occupied events' });
  const reqs = batched.requests.filter((r) => names.some((n) => r.rawBody.includes(n)));
  assert.ok(reqs.some((r) => r.body.events.length > 1), `at least one request carries several events (sizes: ${reqs.map((r) => r.body.events.length)})`);
  for (const r of reqs) assert.equal(sdk(srv, BATCH_APP).webhook({ headers: r.headers, rawBody: r.rawBody }).isValid(), true);
  assert.equal(batched.events().filter((e) => names.includes(e.channel)).length, 8, 'each event exactly once');
});

test('every webhook request received was validly signed', async () => {
  assert.ok(recv.requests.length > 5);
  for (const r of recv.requests) {
    assert.equal(s.webhook({ headers: r.headers, rawBody: r.rawBody }).isValid(), true, r.rawBody);
  }
});
