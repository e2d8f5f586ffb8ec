// A loopback HTTP proxy in front of a real server (moto, OpenBao) for what the real server cannot do on
// demand: throttle, fail with a status, drop connections. In 'pass' mode it forwards untouched and records
// each request's operation (AWS X-Amz-Target, or METHOD /path for Vault), so tests can count backend calls.
import { createServer, request } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault =
  | { readonly kind: 'pass' }
  /** AWS JSON-protocol ThrottlingException (HTTP 400), as Secrets Manager sends it. */
  | { readonly kind: 'aws-throttle' }
  /**
   * Any status with a JSON body, e.g. 403 {"errors":["permission denied"]} for Vault; `headers` add to content-type.
   */
  | {
      readonly kind: 'status';
      readonly status: number;
      readonly body: unknown;
      readonly headers?: Readonly<Record<string, string>>;
    }
  /** Accepts the request, then destroys the socket without an answer. */
  | { readonly kind: 'close' };

export interface FaultProxy {
  readonly url: string;
  /** Applies to every following request until changed; `times` limits it to the next N requests. */
  setFault(fault: Fault, times?: number): void;
  /** Operations seen, in order (passed or faulted). */
  operations(): readonly string[];
  resetOperations(): void;
  stop(): Promise<void>;
}

/** AWS JSON protocol: X-Amz-Target; AWS query protocol (STS): Action= in the form body; else METHOD /path. */
function operationOf(req: IncomingMessage, body: Buffer): string {
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string') return target.split('.').pop() ?? target;
  const action = /(?:^|&)Action=([A-Za-z]+)/.exec(body.toString('utf8'));
  if (action?.[1] !== undefined) return action[1];
  return `${req.method ?? 'GET'} ${(req.url ?? '/').split('?')[0] ?? '/'}`;
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  let fault: Fault = { kind: 'pass' };
  let remaining = Infinity;
  const seen: string[] = [];

  const forward = (req: IncomingMessage, body: Buffer, res: ServerResponse): void => {
    const proxied = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    proxied.on('error', () => res.destroy());
    proxied.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readAll(req);
    seen.push(operationOf(req, body));
    const active = remaining > 0 ? fault : ({ kind: 'pass' } as const);
    if (active.kind !== 'pass') {
      remaining -= 1;
      if (remaining <= 0) fault = { kind: 'pass' };
    }
    switch (active.kind) {
      case 'pass':
        forward(req, body, res);
        return;
      case 'aws-throttle':
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': 'ThrottlingException' });
        res.end(JSON.stringify({ __type: 'ThrottlingException', message: 'Rate exceeded' }));
        return;
      case 'status':
        res.writeHead(active.status, { 'content-type': 'application/json', ...active.headers });
        res.end(JSON.stringify(active.body));
        return;
      case 'close':
        req.socket.destroy();
        return;
    }
  };
  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    setFault(next, times = Infinity): void {
      fault = next;
      remaining = next.kind === 'pass' ? Infinity : times;
    },
    operations: () => [...seen],
    resetOperations(): void {
      seen.length = 0;
    },
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => {
          r();
        });
      }),
  };
}
