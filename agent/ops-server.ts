// The agent's one HTTP port (declared in its container spec; the probes use it): /healthz (the process serves),
// /startup (the first complete set of files is written: app containers start after it), /readyz (and no file is
// older than its staleness threshold), /metrics (Prometheus), /status (JSON for `sidekey status`, bounded in
// size: agent/status-schema.ts). Bodies name files, never values.
//
// It listens on every interface (kubelet probes come to the pod IP), so any pod that can reach the pod can open
// connections: they are capped, idle and slow ones are closed within seconds, and headers are limited, so a flood
// of half-open connections costs a bounded amount of memory (at worst the probes fail while it lasts).
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

// Not `import { createServer } from 'node:http'`: for an ES module import Node builds a facade that reads every
// export of node:http, lazy getters included, and one of them loads Node's bundled undici. That cost the agent
// ~11 MiB RSS, ~5 MiB private memory and ~50 ms at start; the built-in's plain module object does not.
const { createServer } = process.getBuiltinModule('node:http');

export interface OpsStatus {
  /** Every file has been written once. */
  started(): boolean;
  /** Names of files whose data is older than allowed. */
  staleFiles(): readonly string[];
  /** The /status JSON body. */
  statusBody(): string;
}

/** Bounds on what clients can hold; the defaults suit a kubelet and a Prometheus scraper. */
export interface OpsLimits {
  /** Open connections at most; more are closed on accept. */
  readonly maxConnections: number;
  /** A connection with no complete request headers after this long is closed. */
  readonly headersTimeoutMs: number;
  /** A whole request (headers and body) must arrive within this. */
  readonly requestTimeoutMs: number;
  /** A connection idle this long (keep-alive between requests, or a silent one) is closed. */
  readonly idleTimeoutMs: number;
  readonly maxHeaderBytes: number;
  /**
   * How often the header and request deadlines are checked. Node's 30 s: a shorter interval would wake an idle
   * agent every time (silent connections are closed by the idle timeout, which needs no interval).
   */
  readonly checkIntervalMs: number;
}

export const DEFAULT_OPS_LIMITS: OpsLimits = {
  maxConnections: 64,
  headersTimeoutMs: 5000,
  requestTimeoutMs: 10_000,
  idleTimeoutMs: 5000,
  maxHeaderBytes: 8192,
  checkIntervalMs: 30_000,
};

export interface OpsServer {
  readonly port: number;
  close(): Promise<void>;
}

function handler(status: OpsStatus, registry: Registry) {
  return async (path: string): Promise<{ code: number; type: string; body: string }> => {
    const text = (code: number, body: string): { code: number; type: string; body: string } => ({
      code,
      type: 'text/plain; charset=utf-8',
      body: `${body}\n`,
    });
    switch (path) {
      case '/healthz':
        return text(200, 'ok');
      case '/startup':
        return status.started() ? text(200, 'ok') : text(503, 'secrets not written yet');
      case '/readyz': {
        if (!status.started()) return text(503, 'secrets not written yet');
        const stale = status.staleFiles();
        return stale.length === 0 ? text(200, 'ok') : text(503, `stale: ${stale.join(', ')}`);
      }
      case '/metrics':
        return { code: 200, type: registry.contentType, body: await registry.metrics() };
      case '/status':
        return { code: 200, type: 'application/json', body: `${status.statusBody()}\n` };
      default:
        return text(404, 'not found');
    }
  };
}

export async function startOpsServer(
  port: number,
  status: OpsStatus,
  registry: Registry,
  host?: string,
  limits: OpsLimits = DEFAULT_OPS_LIMITS,
): Promise<OpsServer> {
  const route = handler(status, registry);
  const options = {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    connectionsCheckingInterval: limits.checkIntervalMs,
  };
  const server: Server = createServer(options, (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    route(new URL(req.url ?? '/', 'http://agent').pathname).then(
      ({ code, type, body }) => {
        res
          .writeHead(code, { 'content-type': type, 'cache-control': 'no-store' })
          .end(req.method === 'HEAD' ? undefined : body);
      },
      () => {
        res.writeHead(500).end();
      },
    );
  });
  server.maxConnections = limits.maxConnections;
  // Socket inactivity: also closes a connection that never sends a byte.
  server.timeout = limits.idleTimeoutMs;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
