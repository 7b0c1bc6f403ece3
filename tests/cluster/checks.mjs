// Assertions the failure tests share: what every node answers about a
// presence channel, and the webhook history of its members.
import assert from 'node:assert/strict';
import { sdk, eventually } from '../pusher/harness.mjs';

/** The user ids node srv lists for presence channel ch (REST). */
export async function usersOn(srv, ch) {
  const r = await sdk(srv).get({ path: `/channels/${ch}/users` });
  const body = await r.json();
  return body.users.map((u) => u.id);
}

/**
 * Wait until every node lists exactly want (sorted, so a duplicate shows)
 * for ch, and its user_count agrees.
 */
export async function presenceEverywhere(nodes, ch, want, timeout = 10000) {
  want = [...want].sort();
  let last;
  await eventually(
    async () => {
      last = [];
      for (const n of nodes) {
        const ids = (await usersOn(n, ch)).sort();
        const info = await sdk(n).get({ path: `/channels/${ch}`, params: { info: 'user_count' } }).then((r) => r.json());
        last.push({ port: n.port, ids, count: info.user_count });
      }
      return last.every((x) => JSON.stringify(x.ids) === JSON.stringify(want) && x.count === want.length);
    },
    { timeout, label: `presence on ${ch} = ${JSON.stringify(want)} on every node` },
  ).catch((e) => {
    throw new Error(`${e.message}; nodes answered ${JSON.stringify(last)}`);
  });
}

/**
 * Each user's member_added/member_removed webhooks on ch, in the order the
 * cluster stamped them, strictly alternate (added first: never two adds or
 * two removes in a row, which a duplicate or a ghost would cause) and end
 * in the user's final state (final[user]: true present, false gone).
 * Removals are held 3 s before they are sent, so this waits for them.
 */
export async function webhookRunsAlternate(hooks, ch, final, timeout = 15000) {
  const runs = () => {
    const out = {};
    const evs = hooks
      .events()
      .filter((e) => (e.name === 'member_added' || e.name === 'member_removed') && e.channel === ch)
      .sort((a, b) => (a._req.body?.time_ms ?? 0) - (b._req.body?.time_ms ?? 0) || a._req.at - b._req.at);
    for (const e of evs) (out[e.user_id] ??= []).push(e.name === 'member_added' ? '+' : '-');
    return out;
  };
  const ends = (r) => Object.entries(final).every(([u, present]) => (r[u] ?? []).at(-1) === (present ? '+' : '-'));
  await eventually(() => ends(runs()), { timeout, label: `final webhook states ${JSON.stringify(final)}` }).catch((e) => {
    throw new Error(`${e.message}; runs ${JSON.stringify(runs())}`);
  });
  for (const [u, seq] of Object.entries(runs())) {
    seq.forEach((s, i) => assert.equal(s, i % 2 === 0 ? '+' : '-', `${u}'s webhooks alternate, added first: ${seq.join('')}`));
  }
}

/**
 * Publish event on ch through srv every 100 ms until got() shows one
 * arrived (delivery is at most once while a broker connection comes back,
 * so a single publish proves nothing); resolves with the ms it took.
 */
export async function deliveryResumes(srv, ch, event, got, timeout = 10000) {
  const start = Date.now();
  let k = 0;
  while (!got()) {
    if (Date.now() - start > timeout) throw new Error(`no ${event} on ${ch} delivered ${timeout} ms after the first try`);
    try {
      await sdk(srv).trigger(ch, event, { k: k++ });
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  return Date.now() - start;
}
