// The agent's one HTTP port (declared in its container spec; the probes use it): /healthz (the process serves),
// /startup (the first complete set of files is written: app containers start after it), /readyz (and no file is
// older than its staleness threshold), /metrics (Prometheus). Bodies name files, never values.
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
}

export interface OpsServer {
  readonly port: number;
  close(): Promise<void>;
}

function handler(status: OpsStatus, registry: Registry) {
  return async (path: string): Promise<{ code: number; type: string; body: string }> => {
    const text = (code: number, body: string): { code: number; type: string; body: string } => ({ code, type: 'text/plain; charset=utf-8', body: `${body}\n` });
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
      default:
        return text(404, 'not found');
    }
  };
}

export async function startOpsServer(port: number, status: OpsStatus, registry: Registry, host?: string): Promise<OpsServer> {
  const route = handler(status, registry);
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    route(new URL(req.url ?? '/', 'http://agent').pathname).then(
      ({ code, type, body }) => {
        res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : body);
      },
      () => {
        res.writeHead(500).end();
      },
    );
  });
  server.keepAliveTimeout = 65_000;
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
