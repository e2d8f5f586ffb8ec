// The cluster side of `sidekey status`: injected pods listed through the API server (the webhook's
// `sidekey.io/injected` label; a pod named on the command line is checked for its `sidekey.io/status` annotation),
// and each agent's /status read through the API server's pod proxy, with a timeout per pod, a bound on the body
// and a few pods at a time. A pod whose agent cannot be read becomes a row saying why, never an exception.
// RBAC: get and list on pods, get on pods/proxy, in the namespaces read.
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { IncomingMessage, RequestOptions } from 'node:http';
import { AGENT_CONTAINER, INJECTED_LABEL } from '../injector/constants.ts';
import { AGENT_PORT_NAME } from '../injector/containers.ts';
import { STATUS_ANNOTATION } from '../injector/mutate.ts';
import { claimsInjection } from '../injector/status.ts';
import { mapLimit } from '../agent/providers/concurrency.ts';
import { MAX_STATUS_BYTES, parseAgentStatus } from '../agent/status-schema.ts';
import type { PodReport } from './status-report.ts';

/** Agents read at once: enough to cover a namespace quickly, few enough not to load the API server. */
const CONCURRENCY = 8;
/** Pods per list call (the API server pages the rest). */
const PAGE = 200;
/** The proxy adds nothing to the agent's body; a little slack for a Status answer of the API server. */
const MAX_BODY_BYTES = MAX_STATUS_BYTES + 4096;

export interface Selection {
  /** undefined: every namespace. */
  readonly namespace: string | undefined;
  readonly pod?: string;
  readonly timeoutMs: number;
}

/** A clear failure of the whole command (listing refused, no cluster): exit 2 with its message. */
export class StatusError extends Error {
  override readonly name = 'StatusError';
}

/** The `message` of an API server's Status answer (never any other body: a proxied one is the pod's). */
function statusMessage(body: string): string | undefined {
  if (!/"kind":"Status"/.test(body)) return undefined;
  return /"message":"((?:[^"\\]|\\.)*)"/.exec(body)?.[1]?.slice(0, 300);
}

function apiMessage(error: unknown): string {
  const { code, body } = error as { code?: unknown; body?: unknown };
  // An ApiException of the generated client: its own message repeats the headers; the API server's is in the body.
  if (typeof code !== 'number') return (error as Error).message;
  const message = typeof body === 'string' ? statusMessage(body) : undefined;
  const hint =
    code === 403
      ? ' (the user needs get and list on pods)'
      : code === 401
        ? " (the kubeconfig's credentials were refused)"
        : '';
  return `HTTP ${code}${message === undefined ? '' : `: ${message}`}${hint}`;
}

function withTimeout<T>(call: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new StatusError(`${what}: no answer from the API server within ${ms} ms`));
    }, ms);
  });
  return Promise.race([call, timeout]).finally(() => {
    clearTimeout(timer);
  });
}

function isInjected(pod: V1Pod): boolean {
  return (
    pod.metadata?.labels?.[INJECTED_LABEL] === 'true' ||
    claimsInjection(pod.metadata?.annotations?.[STATUS_ANNOTATION] ?? '')
  );
}

/** The injected pods the selection names, in namespace and name order. */
export async function listInjectedPods(kc: KubeConfig, selection: Selection): Promise<V1Pod[]> {
  const api = kc.makeApiClient(CoreV1Api);
  const { namespace, pod, timeoutMs } = selection;
  const where = namespace === undefined ? 'all namespaces' : `namespace "${namespace}"`;
  if (pod !== undefined) {
    const one = await withTimeout(
      api.readNamespacedPod({ name: pod, namespace: namespace ?? 'default' }),
      timeoutMs,
      `pod "${pod}"`,
    ).catch((error: unknown) => {
      throw error instanceof StatusError ? error : new StatusError(`cannot read pod "${pod}": ${apiMessage(error)}`);
    });
    if (!isInjected(one))
      throw new StatusError(`pod "${pod}" in ${where} is not injected by Sidekey (no ${STATUS_ANNOTATION} annotation)`);
    return [one];
  }
  const pods: V1Pod[] = [];
  let next: string | undefined;
  do {
    const query = {
      labelSelector: `${INJECTED_LABEL}=true`,
      limit: PAGE,
      ...(next === undefined ? {} : { _continue: next }),
    };
    const page = await withTimeout(
      namespace === undefined ? api.listPodForAllNamespaces(query) : api.listNamespacedPod({ ...query, namespace }),
      timeoutMs,
      `listing pods in ${where}`,
    ).catch((error: unknown) => {
      throw error instanceof StatusError
        ? error
        : new StatusError(`cannot list pods in ${where}: ${apiMessage(error)}`);
    });
    pods.push(...page.items);
    next = page.metadata?._continue || undefined;
  } while (next !== undefined);
  const key = (p: V1Pod): string => `${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`;
  return pods.sort((a, b) => (key(a) < key(b) ? -1 : 1));
}

type Answer = { readonly code: number; readonly body: string };

/** One GET through the API server, authenticated as the kubeconfig says; a body over MAX_BODY_BYTES fails it. */
async function apiGet(kc: KubeConfig, path: string, timeoutMs: number): Promise<Answer> {
  const server = kc.getCurrentCluster()?.server;
  if (server === undefined) throw new StatusError('the kubeconfig names no cluster');
  const url = new URL(`${server.replace(/\/+$/, '')}${path}`);
  const options: RequestOptions = { method: 'GET', headers: { accept: 'application/json' } };
  await kc.applyToHTTPSOptions(options);
  const { request } = process.getBuiltinModule(url.protocol === 'https:' ? 'node:https' : 'node:http') as {
    request: (
      u: URL,
      o: RequestOptions & { signal: AbortSignal },
      cb: (res: IncomingMessage) => void,
    ) => {
      on(event: 'error', fn: (e: Error) => void): void;
      end(): void;
    };
  };
  return new Promise((resolve, reject) => {
    const req = request(url, { ...options, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) res.destroy(new Error(`an answer larger than ${MAX_BODY_BYTES} bytes`));
        else chunks.push(chunk);
      });
      res.on('error', reject);
      res.on('end', () => {
        resolve({ code: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Why a proxied read did not give a status, in a line (an API server's Status message, never the body). */
function refusal(answer: Answer): string {
  const message = statusMessage(answer.body);
  const hint =
    answer.code === 403
      ? ' (reading an agent needs get on pods/proxy)'
      : answer.code === 404 && message === undefined
        ? ' (the agent has no /status: an older release?)'
        : '';
  return `HTTP ${answer.code} from the pod proxy${message === undefined ? '' : `: ${message}`}${hint}`;
}

function agentPort(pod: V1Pod): { port?: number; exited?: number } {
  const agent = pod.spec?.initContainers?.find((c) => c.name === AGENT_CONTAINER);
  const port = agent?.ports?.find((p) => p.name === AGENT_PORT_NAME)?.containerPort;
  const state = pod.status?.initContainerStatuses?.find((c) => c.name === AGENT_CONTAINER)?.state;
  return {
    ...(port === undefined ? {} : { port }),
    ...(state?.terminated === undefined ? {} : { exited: state.terminated.exitCode }),
  };
}

/** The row of a pod whose agent runs in init-only mode: it wrote once and exited (or has not yet). */
function initOnly(base: Pick<PodReport, 'namespace' | 'name'>, exited: number | undefined): PodReport {
  if (exited === undefined) return { ...base, state: 'init-only', reason: 'the init-only agent has not finished' };
  return exited === 0
    ? { ...base, state: 'init-only', reason: 'the init-only agent wrote the files and exited' }
    : { ...base, state: 'failing', reason: `the init-only agent exited ${exited}: kubectl logs -c ${AGENT_CONTAINER}` };
}

/** The agent's answer through the proxy: its validated status, or why there is none. */
async function proxied(
  kc: KubeConfig,
  path: string,
  timeoutMs: number,
): Promise<Omit<PodReport, 'namespace' | 'name'>> {
  let answer: Answer;
  try {
    answer = await apiGet(kc, path, timeoutMs);
  } catch (error) {
    const { name, message } = error as Error;
    const timedOut = name === 'TimeoutError' || name === 'AbortError';
    return { state: 'unreachable', reason: timedOut ? `no answer within ${timeoutMs} ms` : message };
  }
  if (answer.code !== 200) return { state: 'unreachable', reason: refusal(answer) };
  const parsed = parseAgentStatus(answer.body);
  if (!parsed.ok) return { state: 'unreachable', reason: parsed.error };
  return { state: parsed.value.state, status: parsed.value };
}

/** One pod's row: its agent's status read through the proxy, or why not. */
export async function readPod(kc: KubeConfig, pod: V1Pod, timeoutMs: number): Promise<PodReport> {
  const base = { namespace: pod.metadata?.namespace ?? '', name: pod.metadata?.name ?? '' };
  const { port, exited } = agentPort(pod);
  if (port === undefined) return initOnly(base, exited);
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed')
    return { ...base, state: 'finished', reason: `the pod ${phase.toLowerCase()}; its agent has stopped` };
  if (pod.status?.podIP === undefined)
    return { ...base, state: 'unreachable', reason: `the pod is ${phase ?? 'not scheduled'}` };
  const path = `/api/v1/namespaces/${encodeURIComponent(base.namespace)}/pods/${encodeURIComponent(base.name)}:${port}/proxy/status`;
  return { ...base, ...(await proxied(kc, path, timeoutMs)) };
}

/** Every selected pod's row, CONCURRENCY at a time. */
export async function readPods(kc: KubeConfig, pods: readonly V1Pod[], timeoutMs: number): Promise<PodReport[]> {
  return mapLimit(pods, CONCURRENCY, (pod) => readPod(kc, pod, timeoutMs));
}
