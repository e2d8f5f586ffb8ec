// The cluster's bridges between the host's network namespace and its own, through Unix sockets in the state
// folder (a path on the shared filesystem is reachable from both namespaces; no address, route or rule is
// added to the host):
//   node forwarder.ts host <stateDir> <apiPort>
//       on the host: 127.0.0.1:<apiPort> → api.sock → the apiserver (port 443 inside), and egress.sock →
//       127.0.0.1:<any port> on the host (the test servers pods may call);
//   node forwarder.ts egress <stateDir> <port>      (run inside the cluster's network namespace)
//       NODE_IP:<port> → egress.sock → 127.0.0.1:<port> on the host: what a pod dials to reach a test server.
// Each prints "ready" once listening and runs until SIGTERM.
import { rmSync } from 'node:fs';
import { listenTcpToUnix, serveUnixToTcp } from '../../devkit/pod-runner/forward.ts';
import { API_PORT, NODE_IP, clusterLayout } from './layout.ts';

async function main(argv: readonly string[]): Promise<void> {
  const [role, stateDir, portText] = argv;
  const port = Number(portText);
  if (stateDir === undefined || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new Error('usage: forwarder.ts host|egress <stateDir> <port>');
  }
  const layout = clusterLayout(stateDir);
  if (role === 'host') {
    await listenTcpToUnix(port, layout.apiSocket, API_PORT);
    rmSync(layout.egressSocket, { force: true });
    await serveUnixToTcp(layout.egressSocket);
  } else if (role === 'egress') {
    await listenTcpToUnix(port, layout.egressSocket, port, NODE_IP);
  } else {
    throw new Error(`unknown role "${String(role)}": host or egress`);
  }
  process.on('SIGTERM', () => process.exit(0));
  process.stdout.write('ready\n');
}

await main(process.argv.slice(2));
