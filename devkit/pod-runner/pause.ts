// The pod's sandbox process, like Kubernetes' pause container: it holds the pod's network (and, with
// shareProcessNamespace, PID) namespace and bridges the pod's loopback to the host:
//   <podDir>/ingress.sock  host → pod: the runner's probes and tests reach 127.0.0.1:<port> inside the pod
//   127.0.0.1:<port> in the pod → <podDir>/egress.sock → the runner → 127.0.0.1:<port> on the host
//     (for each port given after the pod dir: the "cluster services" the pod may call, e.g. a test backend)
// Usage: node pause.ts <podDir> [egressPort...]
import { join } from 'node:path';
import { listenTcpToUnix, serveUnixToTcp } from './forward.ts';

const [podDir, ...ports] = process.argv.slice(2);
if (podDir === undefined) {
  process.stderr.write('usage: pause.ts <podDir> [egressPort...]\n');
  process.exit(2);
}
await serveUnixToTcp(join(podDir, 'ingress.sock'));
for (const port of ports) await listenTcpToUnix(Number(port), join(podDir, 'egress.sock'));
process.on('SIGTERM', () => process.exit(0));
process.stdout.write('ready\n');
