// `npm run cluster -- up|down|status|kubectl ARGS…`: the test cluster for people (root only).
//   up       build what is missing (cached), start the cluster, import the images, print how to reach it
//   down     stop it and remove everything it made
//   status   whether it is up, and its node
//   kubectl  kubectl against it (the kubeconfig is <state>/kubeconfig)
import { clusterDown, clusterStatus, clusterUp, attachCluster, installClusterTools } from './cluster.ts';
import { importProjectImages } from './project-images.ts';

const USAGE = 'usage: npm run cluster -- up|down|status|kubectl ARGS...\n';

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  const log = (line: string): void => void process.stderr.write(`[cluster] ${line}\n`);
  switch (command) {
    case 'up': {
      installClusterTools();
      const cluster = await clusterUp({ log });
      await importProjectImages(cluster, log);
      process.stdout.write(
        `up: ${cluster.server}\n  export KUBECONFIG=${cluster.layout.kubeconfig}\n  logs: ${cluster.layout.logDir}\n`,
      );
      return 0;
    }
    case 'down':
      await clusterDown({ log });
      process.stdout.write('down: nothing left\n');
      return 0;
    case 'status': {
      const status = await clusterStatus();
      process.stdout.write(status.up ? `up since ${status.record?.startedAt ?? '?'}\n${status.nodes ?? ''}` : 'down\n');
      return status.up ? 0 : 1;
    }
    case 'kubectl':
      process.stdout.write(await attachCluster().kubectl(rest));
      return 0;
    default:
      process.stderr.write(USAGE);
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`cluster: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
