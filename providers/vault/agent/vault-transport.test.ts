// The transport under node-vault, against a local server for what a real Vault does not do on demand: an
// answer that is not JSON, one too large, one that never comes, a connection refused. Certificates and the
// happy paths run against a real OpenBao in vault.test.ts.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { MAX_ANSWER_BYTES, TransportError, createTransport } from './vault-transport.ts';

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

const seen: Seen[] = [];
const routes: Record<string, (res: ServerResponse) => void> = {
  '/v1/ok': (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{"a":1}}'),
  '/v1/denied': (res) =>
    res.writeHead(403, { 'content-type': 'application/json' }).end('{"errors":["permission denied"]}'),
  '/v1/html': (res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<html>bad gateway</html>'),
  '/v1/empty': (res) => res.writeHead(204).end(),
  '/v1/huge': (res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const more = (): void => {
      while (res.write(chunk)) if (res.writableLength > MAX_ANSWER_BYTES * 2) return;
      res.once('drain', more);
    };
    res.once('close', () => res.removeAllListeners('drain'));
    more();
  },
  '/v1/silent': () => undefined,
};

let server: Server;
let base = '';
before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      (routes[req.url ?? ''] ?? ((r: ServerResponse) => r.writeHead(404).end()))(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

void describe('vault transport', () => {
  const send = createTransport();

  void it('sends a JSON body with the given headers and resolves every status with the parsed answer', async () => {
    const ok = await send({
      method: 'POST',
      uri: `${base}/v1/ok`,
      headers: { 'X-Vault-Token': 'tok' },
      json: { role: 'app' },
    });
    assert.deepEqual(ok, { statusCode: 200, body: { data: { a: 1 } }, request: { path: '/v1/ok' } });
    const request = seen.at(-1);
    assert.equal(request?.method, 'POST');
    assert.equal(request.headers['x-vault-token'], 'tok');
    assert.equal(request.headers['content-type'], 'application/json');
    assert.equal(request.body, '{"role":"app"}');

    const denied = await send({ method: 'GET', uri: `${base}/v1/denied`, json: true });
    assert.deepEqual([denied.statusCode, denied.body], [403, { errors: ['permission denied'] }]);
    assert.equal(seen.at(-1)?.body, '', "`json: true` (node-vault's default) sends no body");
  });

  void it('an answer that is not JSON, or empty, has no body: the status alone tells what happened', async () => {
    const html = await send({ method: 'GET', uri: `${base}/v1/html` });
    assert.deepEqual([html.statusCode, html.body], [502, undefined]);
    const empty = await send({ method: 'GET', uri: `${base}/v1/empty` });
    assert.deepEqual([empty.statusCode, empty.body], [204, undefined]);
  });

  void it('refuses an answer larger than the cap instead of buffering it', async () => {
    await assert.rejects(
      send({ method: 'GET', uri: `${base}/v1/huge` }),
      (error: unknown) => error instanceof TransportError && error.code === 'ERR_ANSWER_TOO_LARGE',
    );
  });

  void it('gives up on a server that never answers, and names a refused connection', async () => {
    await assert.rejects(
      send({ method: 'GET', uri: `${base}/v1/silent`, timeout: 300 }),
      (error: unknown) => error instanceof TransportError && error.code === 'ETIMEDOUT',
    );
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(
      send({ method: 'GET', uri: `http://127.0.0.1:${port}/v1/ok` }),
      (error: unknown) => error instanceof TransportError && error.code === 'ECONNREFUSED',
    );
  });

  void it('sends only over http and https', async () => {
    await assert.rejects(
      send({ method: 'GET', uri: 'ftp://127.0.0.1/v1/ok' }),
      (error: unknown) => error instanceof TransportError && error.code === 'ERR_INVALID_PROTOCOL',
    );
  });
});
