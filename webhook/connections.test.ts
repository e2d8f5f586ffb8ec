// Idle connections cannot lock the API server out: past the cap, a new TLS connection closes the least
// recently used idle one, never one that is serving a request.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { it } from 'node:test';
import { createTestCa, leafFiles } from '../test/support/test-ca.ts';
import { capConnections } from './connections.ts';

void it('closes the least recently used idle connection past the cap, and keeps a busy one', async () => {
  const ca = createTestCa();
  const files = leafFiles(ca, 'cap');
  let release = (): void => undefined;
  const server = createServer({ cert: readFileSync(files.tlsCert), key: readFileSync(files.tlsKey) }, (req, res) => {
    if (req.url === '/slow') release = () => res.end('slow');
    else res.end('ok');
  });
  capConnections(server, 2);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const open = async (): Promise<TLSSocket> => {
    const socket = connect({ host: '127.0.0.1', port, ca: ca.caCert });
    await once(socket, 'secureConnect');
    return socket;
  };
  const closed = (socket: TLSSocket): Promise<boolean> =>
    new Promise((resolve) => {
      socket.once('close', () => { resolve(true); });
      setTimeout(() => { resolve(false); }, 1000).unref();
    });
  try {
    const busy = await open();
    busy.write('GET /slow HTTP/1.1\r\nhost: x\r\n\r\n');
    await new Promise((r) => setTimeout(r, 100));
    const idle = await open();
    const idleClosed = closed(idle);
    const busyClosed = closed(busy);
    const newest = await open();
    assert.equal(await idleClosed, true, 'the idle connection made room');
    release();
    assert.equal(await busyClosed, false, 'the connection serving a request stayed');
    newest.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    const [answer] = (await once(newest, 'data')) as [Buffer];
    assert.match(answer.toString(), /^HTTP\/1\.1 200/);
    for (const s of [busy, newest]) s.destroy();
  } finally {
    server.close();
    rmSync(files.dir, { recursive: true, force: true });
    ca.dispose();
  }
});
