// Free loopback ports for the test harnesses (pusher, talo, the cluster
// suites): one implementation, because every copy had the same flaw.
import net from 'node:net';

// Ports this process already handed out. bind(0) names a port that is free
// now; nothing is listening on it until the server we start binds it, so
// the next bind(0) may name the same port again. That happened in CI: two
// nodes of one NATS cluster got the same route port, and one never started.
const handedOut = new Set();

/** A free TCP port on 127.0.0.1 that this process has not handed out before. */
export async function freePort() {
  for (let attempt = 0; ; attempt++) {
    const port = await bindZero();
    if (!handedOut.has(port) || attempt >= 50) {
      handedOut.add(port);
      return port;
    }
  }
}

function bindZero() {
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
