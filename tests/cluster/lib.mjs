// Building blocks for the cluster failure tests (issue 8): TCP proxies that
// can cut one node off, an external nats-server process, redis-server
// restarts, and 3-node Switchboard clusters wired through them. Every part
// is a real process or a real socket; the Pusher clients and servers come
// from tests/pusher/harness.mjs.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, sleep, startServer, uid } from '../pusher/harness.mjs';
import { HEARTBEAT, NODE_TIMEOUT_MS, startRedis } from '../pusher/cluster.mjs';

export { HEARTBEAT, NODE_TIMEOUT_MS };

/**
 * A TCP proxy from a free loopback port to target. cut() drops every
 * connection through it and refuses new ones until heal(): the node behind
 * it loses its path to the target as if a link failed.
 */
export async function startProxy(targetPort) {
  const pairs = new Set();
  let isCut = false;
  const server = net.createServer((client) => {
    if (isCut) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    get cut() {
      return isCut;
    },
    /** Drop every connection and refuse new ones. */
    cutOff() {
      isCut = true;
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    heal() {
      isCut = false;
    },
    async stop() {
      this.cutOff();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * The nats-server binary for "external NATS": $NATS_SERVER_BIN (run.sh
 * builds github.com/nats-io/nats-server/v2 from go.mod's version), else one
 * on PATH.
 */
export function natsServerBinary() {
  return process.env.NATS_SERVER_BIN || 'nats-server';
}

/**
 * A standalone nats-server with JetStream on a free loopback port. stop()
 * kills it; start() runs it again on the same port and store directory.
 */
export async function startNatsServer() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-natsd-'));
  const logPath = path.join(dir, 'nats-server.log');
  let proc;
  let exited;
  const h = {
    port,
    url: `nats://127.0.0.1:${port}`,
    logPath,
    async start() {
      const log = fs.openSync(logPath, 'a');
      proc = spawn(natsServerBinary(), ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', path.join(dir, 'js'), '-n', uid('natsd-')], { stdio: ['ignore', log, log] });
      exited = new Promise((r) => proc.on('exit', r));
      fs.closeSync(log);
      const deadline = Date.now() + 10000;
      while (!(await answers(port))) {
        if (proc.exitCode !== null) throw new Error(`nats-server exited (${proc.exitCode}); log ${logPath}:\n${fs.readFileSync(logPath, 'utf8').slice(-2000)}`);
        if (Date.now() > deadline) throw new Error(`nats-server on ${port} not up after 10 s`);
        await sleep(25);
      }
      return h;
    },
    /** Stop the process (SIGTERM: nats-server's graceful stop; SIGKILL: a crash). */
    async stop(sig = 'SIGKILL') {
      if (!proc || proc.exitCode !== null || proc.signalCode) return;
      proc.kill(sig);
      await exited;
    },
  };
  return h.start();
}

/** Whether a NATS server on port sends its INFO line. */
function answers(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    const done = (v) => {
      s.destroy();
      resolve(v);
    };
    s.on('data', (d) => {
      got += d;
      if (got.startsWith('INFO ')) done(true);
    });
    s.on('error', () => done(false));
    setTimeout(() => done(false), 500);
  });
}

/**
 * A redis-server this test can kill and start again on the same port
 * (without persistence: a restart loses every key, as the docs' "Redis
 * lost its data" case).
 */
export async function startRestartableRedis() {
  let r = await startRedis();
  const port = r.port;
  return {
    port,
    url: r.url,
    async stop() {
      await r?.stop();
      r = null;
    },
    async start() {
      const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      const stop = () =>
        new Promise((res) => {
          if (proc.exitCode !== null) return res();
          proc.on('exit', res);
          proc.kill('SIGKILL');
        });
      r = { stop };
      const deadline = Date.now() + 10000;
      while (!(await pong(port))) {
        if (proc.exitCode !== null) throw new Error(`redis-server could not take port ${port} again`);
        if (Date.now() > deadline) throw new Error('redis-server did not come back');
        await sleep(25);
      }
    },
  };
}

function pong(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      s.destroy();
      resolve(String(d).startsWith('+PONG'));
    });
    s.on('error', () => resolve(false));
    setTimeout(() => {
      s.destroy();
      resolve(false);
    }, 500);
  });
}

/**
 * n Switchboard nodes on one broker: engine 'redis' (a restartable
 * redis-server) or 'nats-external' (one nats-server process) or 'nats'
 * (embedded, routed). With proxied, each node reaches the broker through
 * its own TCP proxy (c.proxies[i]) so one node can be cut off. Nodes can be
 * stopped and started again (restart(i)) with the same config.
 */
export async function startFailCluster(engine, cfg = {}, { n = 3, proxied = false } = {}, attempt = 1) {
  const id = uid('f');
  const base = { heartbeat: HEARTBEAT, node_timeout: `${NODE_TIMEOUT_MS}ms` };
  const perNode = [];
  let broker;
  const proxies = [];
  if (engine === 'redis') {
    broker = await startRestartableRedis();
  } else if (engine === 'nats-external') {
    broker = await startNatsServer();
  }
  for (let i = 0; i < n; i++) {
    if (proxied) proxies.push(await startProxy(broker.port));
    const port = proxied ? proxies[i].port : broker?.port;
    if (engine === 'redis') perNode.push({ ...base, engine: 'redis', node_name: `${id}-n${i}`, redis: { url: `redis://127.0.0.1:${port}` } });
    else if (engine === 'nats-external') perNode.push({ ...base, engine: 'nats', node_name: `${id}-n${i}`, nats: { embedded: false, urls: [`nats://127.0.0.1:${port}`] } });
  }
  if (engine === 'nats') {
    const ports = [];
    for (let i = 0; i < n; i++) ports.push(await freePort());
    const routes = ports.map((p) => `nats-route://127.0.0.1:${p}`);
    for (let i = 0; i < n; i++) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-nats-'));
      perNode.push({ ...base, engine: 'nats', node_name: `${id}-n${i}`, nats: { embedded: true, listen: `127.0.0.1:${ports[i]}`, routes, store_dir: dir } });
    }
  }
  if (perNode.length !== n) throw new Error(`unknown engine ${engine}`);
  // Started together (a NATS node is ready only with a quorum); if one
  // fails (a busy machine: a broker dial timed out), nothing is left
  // running to keep the test process alive, and the start is tried again.
  const started = await Promise.allSettled(perNode.map((cluster) => startServer({ ...cfg, cluster })));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(started.filter((r) => r.status === 'fulfilled').map((r) => r.value.stop('SIGKILL')));
    for (const p of proxies) await p.stop();
    await broker?.stop();
    if (attempt < 2) return startFailCluster(engine, cfg, { n, proxied }, attempt + 1);
    throw failed.reason;
  }
  const nodes = started.map((r) => r.value);
  return {
    engine,
    nodes,
    broker,
    proxies,
    /** Start node i again (same config: same node_name, ports, store_dir). */
    async restart(i) {
      nodes[i] = await startServer({ ...cfg, cluster: perNode[i] });
      return nodes[i];
    },
    live() {
      return nodes.filter((s) => !s.exitInfo);
    },
    async stop() {
      await Promise.all(nodes.map((s) => s.stop('SIGKILL')));
      for (const p of proxies) await p.stop();
      await broker?.stop();
    },
  };
}

/**
 * The node (index) whose embedded NATS server leads the state stream
 * KV_switchboard: the one that logged "new stream leader" for it last.
 * The embedded server's notices reach the node's log (component
 * nats-server), so no monitoring port is needed.
 */
export function streamLeader(nodes, stream = 'KV_switchboard') {
  let best = { i: -1, at: '' };
  nodes.forEach((s, i) => {
    if (s.exitInfo) return;
    const text = fs.readFileSync(s.logPath, 'utf8');
    for (const line of text.split('\n')) {
      if (!line.includes('new stream leader') || !line.includes(`'${stream}'`) && !line.includes(`> ${stream}'`)) continue;
      const at = /time=(\S+)/.exec(line)?.[1] ?? '';
      if (at >= best.at) best = { i, at };
    }
  });
  return best.i;
}

/** The engines of list that CLUSTER_ENGINES (comma-separated) keeps; all by default. */
export function engines(list) {
  const only = (process.env.CLUSTER_ENGINES || '').split(',').filter(Boolean);
  return only.length ? list.filter((e) => only.includes(e)) : list;
}
