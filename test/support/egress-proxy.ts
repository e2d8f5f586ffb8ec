// A real forward proxy on 127.0.0.1 that records what passed through it: CONNECT tunnels (https, by
// host:port) and absolute-form requests (plain http, by host:port). It speaks the two halves of the HTTP proxy
// protocol clients use and nothing else, so a client that bypassed it leaves no trace here.
//
//   const proxy = await startEgressProxy();
//   env: { HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url, NO_PROXY: '...' }
//   proxy.seen()   // ['CONNECT 127.0.0.1:8200', 'GET 127.0.0.1:5000', ...]
import { createServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { Socket } from 'node:net';

export interface EgressProxy {
  readonly url: string;
  readonly port: number;
  /** "CONNECT host:port" per tunnel, "<METHOD> host:port" per forwarded request, in arrival order. */
  seen(): readonly string[];
  reset(): void;
  stop(): Promise<void>;
}

export async function startEgressProxy(host = '127.0.0.1'): Promise<EgressProxy> {
  const seen: string[] = [];
  const sockets = new Set<Socket>();

  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    // A proxied plain-http request names its target in absolute form: GET http://host:port/path.
    if (req.url === undefined || !/^http:\/\//.test(req.url)) {
      res.writeHead(400).end('not a proxy request');
      return;
    }
    const target = new URL(req.url);
    seen.push(`${req.method ?? 'GET'} ${target.host}`);
    const upstream = httpRequest(target, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => {
      res.writeHead(502).end();
    });
    req.pipe(upstream);
  };

  const server = createServer(forward);
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    const target = req.url ?? '';
    seen.push(`CONNECT ${target}`);
    const colon = target.lastIndexOf(':');
    const upstream = connect(Number(target.slice(colon + 1)), target.slice(0, colon).replace(/^\[|\]$/g, ''), () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    }
    upstream.on('error', () => {
      client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
    });
    client.on('error', () => {
      upstream.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `http://${host}:${port}`,
    port,
    seen: () => [...seen],
    reset: () => {
      seen.length = 0;
    },
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}
