// Several Switchboard nodes as one cluster, for the Talo, Decentraland and
// Damon suites (tests/pusher/cluster.mjs does the same for the Pusher
// harness, whose Server class it reuses). Only Node built-ins: the suites
// have their own node_modules and none of them needs another's.
//
// The engine is a real redis-server (Debian's, started here on a free
// loopback port, one per cluster so no two clusters share keys) or the
// nodes' own embedded NATS servers routed to each other.
//
// As a module: startCluster({bin, engine, n, config, dir}).
// As a command, for the suites whose run.sh starts the server itself:
//
//   node tests/clusternodes.mjs ENGINE N TEMPLATE.json OUTDIR
//
// starts N nodes from TEMPLATE.json (a server config in JSON, which is
// YAML; the strings "$HTTP_PORT" and "$EXTRA_PORT" are replaced by two free
// ports of each node, "$NODE" by its index), writes OUTDIR/nodes.json
// ([{http, extra}, ...]) once every node is ready, and stops them all on
// SIGTERM or SIGINT. Each node's log is OUTDIR/node<i>/server.log.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

/** Heartbeat and node timeout of test clusters: a node silent 2 s is reaped. */
export const HEARTBEAT = '200ms';
export const NODE_TIMEOUT = '2000ms';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A free TCP port on 127.0.0.1 (bind port 0, read it, release it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A private redis-server on a free loopback port, without persistence. */
export async function startRedis(attempt = 1) {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const exited = new Promise((r) => proc.on('exit', r));
  proc.on('error', () => {});
  const deadline = Date.now() + 10000;
  for (;;) {
    // Answering, and ours: another process's redis-server may have taken
    // the port first (ours then exits), and its keys must not mix with ours.
    if ((await redisPid(port)) === proc.pid) break;
    if (proc.exitCode !== null && attempt < 5) return startRedis(attempt + 1);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`redis-server on ${port} did not answer (is Debian's redis-server installed?)`);
    }
    await sleep(50);
  }
  return {
    port,
    proc,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** The process id the redis-server on port reports (INFO server), or 0. */
function redisPid(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    const t = setTimeout(() => {
      s.destroy();
      resolve(0);
    }, 500);
    s.on('connect', () => s.write('INFO server\r\n'));
    s.on('data', (d) => {
      got += d;
      const m = /process_id:(\d+)/.exec(got);
      if (m) {
        clearTimeout(t);
        s.destroy();
        resolve(Number(m[1]));
      }
    });
    s.on('error', () => {
      clearTimeout(t);
      resolve(0);
    });
  });
}

/** The cluster sections of n nodes on engine, and the redis-server it needs. */
export async function clusterSections(engine, n, dir) {
  const id = `c${randomBytes(4).toString('hex')}`;
  const base = { engine, heartbeat: HEARTBEAT, node_timeout: NODE_TIMEOUT };
  if (engine === 'redis') {
    const redis = await startRedis();
    return { redis, sections: Array.from({ length: n }, (_, i) => ({ ...base, node_name: `${id}-n${i}`, redis: { url: redis.url } })) };
  }
  if (engine === 'nats') {
    const ports = [];
    for (let i = 0; i < n; i++) ports.push(await freePort());
    const routes = ports.map((p) => `nats-route://127.0.0.1:${p}`);
    return {
      redis: null,
      sections: ports.map((p, i) => ({
        ...base,
        node_name: `${id}-n${i}`,
        nats: { embedded: true, listen: `127.0.0.1:${p}`, routes, store_dir: path.join(dir, `nats-n${i}`) },
      })),
    };
  }
  throw new Error(`unknown cluster engine ${engine} (redis or nats)`);
}

/**
 * One server process: config is written to dir/config.yaml, its output to
 * dir/server.log. Resolves once its log says it listens on port (its own
 * port: another process may have taken a probed port) and /readyz answers
 * 200; rejects with the log's tail if it exits first or takes 30 s.
 */
export async function startNode(bin, config, dir, port, env = {}) {
  dir = path.resolve(dir); // the server runs in it
  fs.mkdirSync(dir, { recursive: true });
  const configPath = path.join(dir, 'config.yaml');
  fs.writeFileSync(configPath, `# generated by tests/clusternodes.mjs\n${JSON.stringify(config, null, 2)}\n`);
  const logPath = path.join(dir, 'server.log');
  const log = fs.openSync(logPath, 'a');
  const proc = spawn(bin, ['serve', '-config', configPath], {
    cwd: dir,
    stdio: ['ignore', log, log],
    env: { ...process.env, SWITCHBOARD_CONFIG: '', SWITCHBOARD_LISTEN: '', PORT: '', ...env },
  });
  fs.closeSync(log);
  const node = {
    proc, port, dir, configPath, logPath, exited: false,
    logs(n = 80) {
      try {
        return fs.readFileSync(logPath, 'utf8').split('\n').slice(-n).join('\n');
      } catch {
        return '';
      }
    },
    async stop(sig = 'SIGTERM') {
      if (node.exited) return;
      proc.kill(sig);
      const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
      await node.exit;
      clearTimeout(t);
    },
  };
  node.exit = new Promise((resolve) => proc.on('exit', (code, signal) => {
    node.exited = true;
    resolve({ code, signal });
  }));
  const deadline = Date.now() + 30000;
  const mine = `addr=127.0.0.1:${port} `;
  for (;;) {
    if (node.exited) throw new Error(`server exited during startup; config ${configPath}\n${node.logs()}`);
    const listening = node.logs(1000).split('\n').some((l) => l.includes('msg="switchboard listening"') && l.includes(mine));
    if (listening) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/readyz`);
        await r.arrayBuffer();
        if (r.status === 200) return node;
      } catch {}
    }
    if (Date.now() > deadline) {
      await node.stop('SIGKILL');
      throw new Error(`server not ready after 30 s; config ${configPath}\n${node.logs()}`);
    }
    await sleep(50);
  }
}

/**
 * n nodes of one cluster on engine. config(i, cluster, port) returns node
 * i's whole config (cluster: its cluster section; port: its free HTTP
 * port). Nodes start in parallel: a NATS node is ready only once a quorum
 * of its peers is up. A node that loses its probed port to another process
 * is started again on a new one.
 */
export async function startCluster({ bin, engine, n = 3, config, dir, env }) {
  dir = path.resolve(dir);
  fs.mkdirSync(dir, { recursive: true });
  const { redis, sections } = await clusterSections(engine, n, dir);
  const started = [];
  const startOne = async (i) => {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      try {
        const node = await startNode(bin, config(i, sections[i], port), path.join(dir, `node${i}-${attempt}`), port, env);
        started.push(node);
        return node;
      } catch (e) {
        if (attempt < 3 && /address already in use/i.test(e.message)) continue;
        throw e;
      }
    }
  };
  let nodes;
  try {
    nodes = await Promise.all(sections.map((_, i) => startOne(i)));
  } catch (e) {
    await Promise.all(started.map((s) => s.stop('SIGKILL')));
    await redis?.stop();
    throw e;
  }
  return {
    engine,
    nodes,
    redis,
    logs(n = 60) {
      return nodes.map((s, i) => `-- node ${i} (${s.logPath})\n${s.logs(n)}`).join('\n');
    },
    async stop(sig = 'SIGTERM') {
      if (engine === 'nats' && sig === 'SIGTERM') {
        // Stopped all at once, every node's leave would wait 5 s for a
        // state-store quorum that is going away too: one at a time, and
        // the last (no quorum can be left for it) is killed.
        for (const s of nodes.slice(0, -1)) await s.stop('SIGTERM');
        await nodes.at(-1).stop('SIGKILL');
        return;
      }
      await Promise.all(nodes.map((s) => s.stop(sig)));
      await redis?.stop();
    },
  };
}

/** Round-robin: each call returns the next item of list. */
export function roundRobin(list) {
  let next = 0;
  return () => list[next++ % list.length];
}

// ---------------------------------------------------------------- command

async function main([engine, n, templatePath, out]) {
  const bin = process.env.SWITCHBOARD_BIN;
  if (!bin || !engine || !n || !templatePath || !out) {
    console.error('usage: SWITCHBOARD_BIN=... node tests/clusternodes.mjs redis|nats N TEMPLATE.json OUTDIR');
    process.exit(2);
  }
  const template = fs.readFileSync(templatePath, 'utf8');
  // One more free port per node for a second listener (Damon's TCP).
  const extras = [];
  for (let i = 0; i < Number(n); i++) extras.push(await freePort());
  const cluster = await startCluster({
    bin,
    engine,
    n: Number(n),
    dir: out,
    config: (i, section, port) => {
      const text = template.replaceAll('$HTTP_PORT', String(port)).replaceAll('$EXTRA_PORT', String(extras[i])).replaceAll('$NODE', String(i));
      return { ...JSON.parse(text), cluster: section };
    },
  }).catch((e) => {
    console.error(`clusternodes: ${e.message}`);
    process.exit(1);
  });
  const stop = async () => {
    await cluster.stop();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const nodes = cluster.nodes.map((s, i) => ({ http: s.port, extra: extras[i], log: s.logPath, pid: s.proc.pid }));
  fs.writeFileSync(path.join(out, 'nodes.tmp'), JSON.stringify(nodes));
  fs.renameSync(path.join(out, 'nodes.tmp'), path.join(out, 'nodes.json'));
  // A node that dies during the run is reported by the suite's run.sh.
  setInterval(() => {}, 1 << 30);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2));
}
