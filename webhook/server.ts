// The HTTPS shell around reviewAdmission() and reviewWorkload(): POST /mutate, /validate and /validate/warn,
// /healthz, /readyz on the TLS port, Prometheus /metrics on a plain HTTP port, certificate rotation without
// restart and a graceful drain. Makes no outbound call. Client mistakes get a 4xx with a JSON reason; only a
// bug of ours can produce a 5xx.
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { WebhookConfig } from './config.ts';
import type { WebhookMetrics } from './metrics.ts';
import { reviewAdmission, reviewContext } from './review.ts';
import type { ReviewOutcome, ReviewResult } from './review.ts';
import { WORKLOAD_ACTIONS, WORKLOAD_PATHS, reviewWorkload } from './workload-review.ts';
import type { WorkloadAction, WorkloadResult } from './workload-review.ts';
import { BodyBudget, MAX_IN_FLIGHT } from './body.ts';
import { capConnections } from './connections.ts';
import { certificateNotAfter, loadTls, watchTls } from './tls.ts';
import type { TlsPair } from './tls.ts';
import { defined } from '../injector/defined.ts';

export interface WebhookDeps {
  readonly config: Readonly<WebhookConfig>;
  readonly log: Logger;
  readonly metrics: WebhookMetrics;
  /** Monotonic milliseconds, for latency. */
  readonly now?: () => number;
  /** Interface to listen on (default: all). */
  readonly host?: string;
}

export interface RunningWebhook {
  readonly port: number;
  readonly metricsPort: number;
  /** Fails readiness, keeps serving for drainSeconds, then closes (in-flight requests finish). */
  drain(): Promise<void>;
  close(): Promise<void>;
}

/** One admission endpoint: how a review body is answered, counted and logged. */
interface AdmissionRoute<R extends string> {
  review(text: string): ReviewOutcome<R>;
  observe(result: R | 'invalid', seconds: number): void;
  readonly event: string;
  /** Results logged at info (the rest at debug). */
  readonly noteworthy: readonly string[];
}

const JSON_TYPE = { 'content-type': 'application/json' } as const;

/**
 * Connection and time bounds. The API server holds a few keep-alive connections and sends a review in one go
 * within its timeoutSeconds (at most 30 s), so a client that takes longer, or that opens many more
 * connections, is not the API server: it is dropped before it costs memory.
 */
export const SERVER_LIMITS = {
  /**
   * TLS connections kept; a new one past it closes an idle one, one that never carried a request first
   * (connections.ts).
   */
  maxTlsConnections: 128,
  /**
   * TLS handshakes under way; a new connection past it closes the oldest one still in its handshake
   * (connections.ts). Twice the admissions handled at once (body.ts), so a burst of new connections from
   * the API server fits.
   */
  maxHandshakes: 2 * MAX_IN_FLIGHT,
  /** TCP connections, handshakes included: a hard cap past which Node drops new ones. */
  maxConnections: 1024,
  /**
   * The kernel's queue of connections not yet accepted (Node's default is 511, capped by net.core.somaxconn):
   * room for a burst as large as maxConnections, so that the API server's connection opened amid a flood is
   * queued rather than dropped and retried a second later.
   */
  backlog: 1024,
  handshakeTimeoutMs: 5_000,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  /** How often Node checks the two timeouts above (its default, 30 s, would let them run 40 s). */
  checkIntervalMs: 1_000,
  keepAliveTimeoutMs: 90_000,
} as const;

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  close: boolean,
  headers: Readonly<Record<string, string>> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...JSON_TYPE,
    ...headers,
    'content-length': Buffer.byteLength(text),
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(text);
}

/** Prometheus scrapers: a few at a time. */
const METRICS_MAX_CONNECTIONS = 32;

/** Whether the webhook takes admissions: ready once listening, draining after SIGTERM. */
interface Phase {
  ready: boolean;
  draining: boolean;
}

type AnyRoute = AdmissionRoute<ReviewResult> | AdmissionRoute<WorkloadResult>;

/** The admission endpoints by path: /mutate for pods, /validate and /validate/warn for workloads. */
function admissionRoutes(config: Readonly<WebhookConfig>, metrics: WebhookMetrics): ReadonlyMap<string, AnyRoute> {
  const ctx = reviewContext(config);
  const mutate: AdmissionRoute<ReviewResult> = {
    review: (text) => reviewAdmission(text, ctx),
    observe: (result, seconds) => {
      metrics.observeAdmission(result, seconds);
    },
    event: 'admission',
    noteworthy: ['injected', 'denied'],
  };
  const workload = (action: WorkloadAction): AdmissionRoute<WorkloadResult> => ({
    review: (text) => reviewWorkload(text, ctx, action),
    observe: (result, seconds) => {
      metrics.observeWorkloadCheck(result, seconds);
    },
    event: 'workload_check',
    noteworthy: ['denied', 'warned'],
  });
  return new Map<string, AnyRoute>([
    ['/mutate', mutate],
    ...WORKLOAD_ACTIONS.map((a) => [WORKLOAD_PATHS[a], workload(a)] as const),
  ]);
}

type Admit = <R extends string>(
  req: IncomingMessage,
  res: ServerResponse,
  started: number,
  route: AdmissionRoute<R>,
) => Promise<void>;

/** Reads, answers, counts and logs one admission, within the shared body budget and in-flight bound. */
function createAdmit(config: Readonly<WebhookConfig>, log: Logger, now: () => number, phase: Phase): Admit {
  const budget = new BodyBudget(config.maxBodyBytes);
  const answer = async <R extends string>(
    req: IncomingMessage,
    res: ServerResponse,
    route: AdmissionRoute<R>,
  ): Promise<ReviewOutcome<R | 'invalid'>> => {
    const full = budget.enter();
    if (full !== undefined) return { status: 503, body: { error: full }, result: 'invalid', detail: 'busy' };
    res.once('close', () => {
      budget.leave();
    });
    if (!/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
      req.resume();
      return {
        status: 415,
        body: { error: 'Content-Type must be application/json' },
        result: 'invalid',
        detail: 'content type',
      };
    }
    const body = await budget.read(req);
    return body.ok
      ? route.review(body.text)
      : { status: body.status, body: { error: body.error }, result: 'invalid', detail: body.error };
  };
  return async (req, res, started, route) => {
    const outcome = await answer(req, res, route);
    // A refused body is not read to its end: close the connection rather than drain it.
    const refused = outcome.status === 413 || outcome.status === 503;
    send(res, outcome.status, outcome.body, phase.draining || refused, refused ? { 'retry-after': '1' } : {});
    if (refused) res.once('finish', () => req.destroy());
    const seconds = (now() - started) / 1000;
    route.observe(outcome.result, seconds);
    const level = route.noteworthy.includes(outcome.result) ? 'info' : 'debug';
    log[level](
      {
        event: route.event,
        result: outcome.result,
        detail: outcome.detail,
        uid: outcome.uid,
        namespace: outcome.namespace,
        dryRun: outcome.dryRun,
        ms: Math.round(seconds * 1e4) / 10,
      },
      route.event,
    );
  };
}

/** Routes a request on the TLS port: admissions, then the probes. */
function createHandler(
  routes: ReadonlyMap<string, AnyRoute>,
  admit: Admit,
  now: () => number,
  phase: Phase,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = now();
    const path = (req.url ?? '/').split('?')[0] ?? '';
    const route = routes.get(path);
    if (route !== undefined) {
      if (req.method === 'POST') await admit(req, res, started, route);
      else send(res, 405, { error: 'use POST' }, false);
    } else if (path === '/healthz' && req.method === 'GET') {
      send(res, 200, { status: 'ok' }, phase.draining);
    } else if (path === '/readyz' && req.method === 'GET') {
      const ready = phase.ready && !phase.draining;
      send(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready' }, phase.draining);
    } else {
      send(res, 404, { error: 'not found' }, phase.draining);
    }
  };
}

const TLS_OPTIONS = { minVersion: 'TLSv1.2', handshakeTimeout: SERVER_LIMITS.handshakeTimeoutMs } as const;

/** The HTTPS server with every connection and time bound of SERVER_LIMITS. */
function createAdmissionServer(
  pair: TlsPair,
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  log: Logger,
): HttpsServer {
  const server = createHttpsServer(
    { ...TLS_OPTIONS, cert: pair.cert, key: pair.key, connectionsCheckingInterval: SERVER_LIMITS.checkIntervalMs },
    (req, res) => {
      handle(req, res).catch((err: unknown) => {
        log.error({ event: 'handler_error', err: { message: (err as Error).message } }, 'request failed');
        if (!res.headersSent) send(res, 500, { error: 'internal error' }, true);
      });
    },
  );
  server.maxConnections = SERVER_LIMITS.maxConnections;
  capConnections(server, { maxTls: SERVER_LIMITS.maxTlsConnections, maxHandshakes: SERVER_LIMITS.maxHandshakes });
  server.keepAliveTimeout = SERVER_LIMITS.keepAliveTimeoutMs;
  server.headersTimeout = SERVER_LIMITS.headersTimeoutMs;
  server.requestTimeout = SERVER_LIMITS.requestTimeoutMs;
  return server;
}

/** Prometheus /metrics on plain HTTP, a few scrapers at a time. */
function createMetricsServer(metrics: WebhookMetrics): Server {
  const server = createHttpServer({ connectionsCheckingInterval: SERVER_LIMITS.checkIntervalMs }, (req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/metrics' || req.method !== 'GET') {
      send(res, 404, { error: 'not found' }, false);
      return;
    }
    metrics.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(text);
      },
      () => {
        send(res, 500, { error: 'metrics unavailable' }, false);
      },
    );
  });
  server.maxConnections = METRICS_MAX_CONNECTIONS;
  server.headersTimeout = SERVER_LIMITS.headersTimeoutMs;
  server.requestTimeout = SERVER_LIMITS.requestTimeoutMs;
  return server;
}

/** Closes both servers: idle connections at once, the rest when their requests end, all after 10 s. */
async function closeServers(servers: readonly Server[]): Promise<void> {
  const closing = Promise.all(servers.map(closeServer));
  for (const s of servers) s.closeIdleConnections();
  const hard = setTimeout(() => {
    for (const s of servers) s.closeAllConnections();
  }, 10_000);
  await closing;
  clearTimeout(hard);
}

export async function startWebhook(deps: WebhookDeps): Promise<RunningWebhook> {
  const { config, log, metrics } = deps;
  const now = deps.now ?? ((): number => performance.now());
  const files = { certFile: config.tlsCert, keyFile: config.tlsKey };
  const pair = await loadTls(files);
  metrics.setCertificateExpiry(certificateNotAfter(pair.cert));
  const phase: Phase = { ready: false, draining: false };
  const handle = createHandler(admissionRoutes(config, metrics), createAdmit(config, log, now, phase), now, phase);
  const server = createAdmissionServer(pair, handle, log);
  const metricsServer = createMetricsServer(metrics);
  const watcher = watchTls({
    files,
    current: pair,
    apply: (next: TlsPair) => {
      server.setSecureContext({ ...TLS_OPTIONS, cert: next.cert, key: next.key });
      metrics.setCertificateExpiry(certificateNotAfter(next.cert));
    },
    log,
    onReload: (outcome) => {
      metrics.countTlsReload(outcome);
    },
  });
  const close = async (): Promise<void> => {
    await watcher.close();
    await closeServers([server, metricsServer]);
  };
  // A start that fails half-way (a port taken) closes what it opened, so the process exits instead of
  // answering /healthz without /mutate or metrics.
  let port: number;
  let metricsPort: number;
  try {
    port = await listen(server, config.port, deps.host, SERVER_LIMITS.backlog);
    metricsPort = await listen(metricsServer, config.metricsPort, deps.host);
  } catch (err) {
    await close();
    throw err;
  }
  phase.ready = true;
  log.info({ event: 'listening', port, metricsPort }, 'webhook listening');

  return {
    port,
    metricsPort,
    async drain(): Promise<void> {
      phase.draining = true;
      log.info({ event: 'draining', seconds: config.drainSeconds }, 'draining');
      await new Promise((r) => {
        setTimeout(r, config.drainSeconds * 1000);
      });
      await close();
    },
    close,
  };
}

function listen(server: Server, port: number, host: string | undefined, backlog?: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, ...defined({ backlog }) }, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => {
      resolve();
    });
  });
}
