// `sidekey status [-n NAMESPACE | -A] [POD]`: for each injected pod, whether its secrets are fresh, stale or
// failing, read from its agent's /status through the API server's pod proxy (cli/status-pods.ts), as a table
// or JSON (cli/status-report.ts). The cluster comes from the kubeconfig the usual way (KUBECONFIG,
// ~/.kube/config, in-cluster). Exit codes: 0 no pod failing, 1 a pod failing or its agent unreadable, 2 usage,
// no cluster, or the pods could not be listed.
import { KubeConfig } from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { clusterConfigured } from '../webhook/sidecar-mode.ts';
import { parseCommandLine } from './args.ts';
import { defined } from '../injector/defined.ts';
import { listInjectedPods, readPods, StatusError } from './status-pods.ts';
import { exitCodeOf, formatJson, formatTable } from './status-report.ts';

const DEFAULT_TIMEOUT_S = 5;

const USAGE = `usage: sidekey status [-n NAMESPACE | -A] [-o table|json] [POD]

Shows, for each pod Sidekey injected (label sidekey.io/injected=true), whether its secrets are fresh, stale or
failing, as its agent reports them on /status, read through the API server's pod proxy. A pod whose agent
cannot be read is shown as unreachable, with the reason. Exit code 0 when no pod is failing, 1 when one is
failing or unreachable, 2 on a usage error or when the pods cannot be listed.

The user needs get and list on pods and get on pods/proxy in the namespaces read.

options:
  -n, --namespace NS     the namespace (default: the kubeconfig context's, else "default")
  -A, --all-namespaces   every namespace
  -o, --output FORMAT    table (default) or json (each pod with its agent's whole status)
  --timeout SECONDS      per-pod limit on reading an agent, and on each list call (default ${DEFAULT_TIMEOUT_S})
  --kubeconfig FILE      the kubeconfig to read (default: KUBECONFIG, ~/.kube/config, else in-cluster)
  --context NAME         the kubeconfig context to use (default: its current context)
`;

const OPTIONS = {
  namespace: { type: 'string', short: 'n' },
  'all-namespaces': { type: 'boolean', short: 'A' },
  output: { type: 'string', short: 'o' },
  timeout: { type: 'string' },
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface Request {
  readonly namespace?: string;
  readonly all: boolean;
  readonly pod?: string;
  readonly json: boolean;
  readonly timeoutMs: number;
  readonly kubeconfig?: string;
  readonly context?: string;
}

/** --timeout in ms, or what is wrong with it. */
function timeoutOf(text: string | undefined): number | string {
  const seconds = Number(text ?? DEFAULT_TIMEOUT_S);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 300)
    return `--timeout takes seconds between 0 and 300, e.g. --timeout 10, not "${text ?? ''}"`;
  return Math.round(seconds * 1000);
}

function request(argv: readonly string[]): Request | string {
  const parsed = parseCommandLine(argv, OPTIONS, true);
  if (!parsed.ok) return parsed.error;
  const { values, positionals } = parsed;
  if (positionals.length > 1) return `one POD at most, got ${positionals.length}`;
  const all = values['all-namespaces'] === true;
  if (all && (values.namespace !== undefined || positionals.length > 0))
    return '-A lists every namespace: drop -n and POD, or drop -A';
  const output = values.output ?? 'table';
  if (output !== 'table' && output !== 'json') return `-o must be table or json, not "${output}"`;
  const timeoutMs = timeoutOf(values.timeout);
  if (typeof timeoutMs === 'string') return timeoutMs;
  return {
    all,
    json: output === 'json',
    timeoutMs,
    ...(values.namespace === undefined ? {} : { namespace: values.namespace }),
    ...(positionals[0] === undefined ? {} : { pod: positionals[0] }),
    ...defined({ kubeconfig: values.kubeconfig, context: values.context }),
  };
}

function loadKubeConfig({ kubeconfig, context }: Request): KubeConfig {
  if (kubeconfig === undefined && !clusterConfigured(process.env, existsSync))
    throw new StatusError(
      'no cluster configured: pass --kubeconfig, set KUBECONFIG, write ~/.kube/config, or run inside a pod',
    );
  const kc = new KubeConfig();
  try {
    if (kubeconfig === undefined) kc.loadFromDefault();
    else kc.loadFromFile(kubeconfig);
  } catch (error) {
    throw new StatusError(`cannot read the kubeconfig: ${(error as Error).message}`);
  }
  if (context !== undefined) {
    const names = kc.getContexts().map((c) => c.name);
    if (!names.includes(context))
      throw new StatusError(`the kubeconfig has no context "${context}" (it has: ${names.join(', ') || 'none'})`);
    kc.setCurrentContext(context);
  }
  if (kc.getCurrentCluster() === null) throw new StatusError('the kubeconfig has no current context naming a cluster');
  return kc;
}

export async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const asked = request(argv);
  if (typeof asked === 'string') {
    process.stderr.write(`sidekey status: ${asked}\n${USAGE}`);
    return 2;
  }
  try {
    const kc = loadKubeConfig(asked);
    const contextNamespace = kc.getContextObject(kc.getCurrentContext())?.namespace;
    const namespace = asked.all ? undefined : (asked.namespace ?? contextNamespace ?? 'default');
    const pods = await listInjectedPods(kc, {
      namespace,
      timeoutMs: asked.timeoutMs,
      ...(asked.pod === undefined ? {} : { pod: asked.pod }),
    });
    const reports = await readPods(kc, pods, asked.timeoutMs);
    if (asked.json) process.stdout.write(formatJson(reports));
    else if (reports.length === 0)
      process.stderr.write(
        `No injected pods in ${namespace === undefined ? 'any namespace' : `namespace "${namespace}"`}.\n`,
      );
    else process.stdout.write(formatTable(reports, asked.all));
    return exitCodeOf(reports);
  } catch (error) {
    if (!(error instanceof StatusError)) throw error;
    process.stderr.write(`sidekey status: ${error.message}\n`);
    return 2;
  }
}
