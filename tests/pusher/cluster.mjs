// Several Switchboard nodes as one cluster, for the cluster tests: a real
// redis-server (Debian's, started here on a free port) or the nodes' own
// embedded NATS servers routed to each other. Every node is a harness
// Server, so the usual clients (pusher-js, the pusher SDK, raw ws) point at
// any one of them.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, sleep, startServer, uid } from './harness.mjs';

/** The engines the cluster tests run on (PUSHER_CLUSTER_ENGINES, comma-separated). */
export const ENGINES = (process.env.PUSHER_CLUSTER_ENGINES || 'redis,nats').split(',').filter(Boolean);

/** Test timings: a node silent for 2 s is reaped. */
export const HEARTBEAT = '200ms';
export const NODE_TIMEOUT_MS = 2000;

/** A private redis-server on a free loopback port, without persistence. */
export async function startRedis(attempt = 1) {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const exited = new Promise((r) => proc.on('exit', r));
  const deadline = Date.now() + 10000;
  for (;;) {
    // Answering, and ours: another file's redis-server may have taken the
    // port first (ours then exits), and its keys must not mix with ours.
    if ((await redisPid(port)) === proc.pid) break;
    if (proc.exitCode !== null && attempt < 5) {
      return startRedis(attempt + 1); // lost the port: try another
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`redis-server on ${port} did not answer PING (is Debian's redis-server installed?)`);
    }
    await sleep(50);
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** The process id the redis-server on port reports (INFO server), or 0. */
function redisPid(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.on('connect', () => s.write('INFO server\r\n'));
    s.on('data', (d) => {
      got += d;
      const m = /process_id:(\d+)/.exec(got);
      if (m) {
        s.destroy();
        resolve(Number(m[1]));
      }
    });
    s.on('error', () => resolve(0));
    setTimeout(() => {
      s.destroy();
      resolve(0);
    }, 500);
  });
}

/**
 * Start n nodes of one cluster on engine ('redis' or 'nats') with the
 * harness config cfg (apps, pusher, limits...). Resolves once every node's
 * /readyz answers 200 (on NATS: once the state store has its quorum).
 */
export async function startCluster(engine, cfg = {}, n = 3, attempt = 1) {
  const id = uid('c');
  let redis;
  const base = { engine, heartbeat: HEARTBEAT, node_timeout: `${NODE_TIMEOUT_MS}ms` };
  const perNode = [];
  if (engine === 'redis') {
    redis = await startRedis();
    for (let i = 0; i < n; i++) perNode.push({ ...base, node_name: `${id}-n${i}`, redis: { url: redis.url } });
  } else if (engine === 'nats') {
    const ports = [];
    for (let i = 0; i < n; i++) ports.push(await freePort());
    const routes = ports.map((p) => `nats-route://127.0.0.1:${p}`);
    for (let i = 0; i < n; i++) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-nats-'));
      perNode.push({ ...base, node_name: `${id}-n${i}`, nats: { embedded: true, listen: `127.0.0.1:${ports[i]}`, routes, store_dir: dir } });
    }
  } else {
    throw new Error(`unknown engine ${engine}`);
  }
  // In parallel: a NATS node is ready only once a quorum of its peers is up.
  // If one fails (another process took one of its ports between our probe
  // and its bind: the harness retries a node's HTTP port, but a route port
  // is in every node's config), the whole cluster starts again on new ports.
  const started = await Promise.allSettled(perNode.map((cluster) => startServer({ ...cfg, cluster })));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(started.filter((r) => r.status === 'fulfilled').map((r) => r.value.stop('SIGKILL')));
    await redis?.stop();
    if (attempt < 3) return startCluster(engine, cfg, n, attempt + 1);
    throw failed.reason;
  }
  const nodes = started.map((r) => r.value);
  return {
    engine,
    nodes,
    redis,
    async stop() {
      await Promise.all(nodes.map((s) => s.stop()));
      await redis?.stop();
    },
  };
}

/**
 * A cluster that looks like one harness Server to the test files: every
 * read of .port (a client, an SDK, a REST call) names the next node, so the
 * files' clients spread over the nodes; stop and signals reach every node.
 */
export async function startClusterServer(engine, cfg = {}) {
  const c = await startCluster(engine, cfg);
  let next = 0;
  const all = c.nodes;
  const proc = {
    kill: (sig) => all.forEach((n) => n.proc.kill(sig)),
  };
  return {
    host: '127.0.0.1',
    apps: all[0].apps,
    proc,
    get port() {
      return all[next++ % all.length].port;
    },
    get httpURL() {
      return `http://127.0.0.1:${this.port}`;
    },
    wsURL(...args) {
      return all[next++ % all.length].wsURL(...args);
    },
    get exited() {
      return Promise.all(all.map((n) => n.exited)).then(async (infos) => {
        await c.redis?.stop();
        return infos[0];
      });
    },
    get exitInfo() {
      return all.every((n) => n.exitInfo) ? all[0].exitInfo : null;
    },
    logs(n = 60) {
      return all.map((s, i) => `-- node ${i}\n${s.logs(n)}`).join('\n');
    },
    async stop(sig) {
      const infos = await Promise.all(all.map((s) => s.stop(sig)));
      await c.redis?.stop();
      return infos[0];
    },
  };
}
