// A flood of connections cannot lock the API server out: past the caps, a new connection closes the oldest one
// still in its handshake, or an idle TLS connection (one that never carried a request first), never one that
// is serving a request.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import { connect as connectTcp } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { connect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { it } from 'node:test';
import { createTestCa, leafFiles } from '../test/support/test-ca.ts';
import { capConnections } from './connections.ts';
import type { ConnectionLimits } from './connections.ts';

interface Fixture {
  /** A TLS connection, once its handshake is done. */
  readonly open: () => Promise<TLSSocket>;
  /** A TCP connection that never starts its TLS handshake, from `from` (a loopback address, default 127.0.0.1). */
  readonly silent: (from?: string) => Promise<Socket>;
  /** Answers a request sent on `/slow` once called. */
  readonly release: () => void;
}

/** An HTTPS server with Node's timeouts (a silent connection stays 120 s) and the caps under test. */
async function withServer(limits: ConnectionLimits, run: (f: Fixture) => Promise<void>): Promise<void> {
  const ca = createTestCa();
  const files = leafFiles(ca, 'cap');
  let release = (): void => undefined;
  const server = createServer({ cert: readFileSync(files.tlsCert), key: readFileSync(files.tlsKey) }, (req, res) => {
    if (req.url === '/slow') release = () => res.end('slow');
    else res.end('ok');
  });
  capConnections(server, limits);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const sockets: Socket[] = [];
  try {
    await run({
      open: async () => {
        const socket = connect({ host: '127.0.0.1', port, ca: ca.caCert });
        sockets.push(socket);
        await once(socket, 'secureConnect');
        return socket;
      },
      silent: async (from = '127.0.0.1') => {
        const socket = connectTcp({ host: '127.0.0.1', port, localAddress: from });
        socket.on('error', () => undefined);
        sockets.push(socket);
        await once(socket, 'connect');
        return socket;
      },
      release: () => {
        release();
      },
    });
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
    rmSync(files.dir, { recursive: true, force: true });
    ca.dispose();
  }
}

/** Whether the server closes `socket` within a second (a cap acts at once; Node's timeouts would take minutes). */
function closed(socket: Socket): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve(true);
    socket.once('close', () => {
      resolve(true);
    });
    setTimeout(() => {
      resolve(false);
    }, 1000).unref();
  });
}

async function get(socket: TLSSocket, path: string): Promise<string> {
  socket.write(`GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`);
  const [answer] = (await once(socket, 'data')) as [Buffer];
  return answer.toString();
}

void it('closes the least recently used idle connection past the cap, and keeps a busy one', async () => {
  await withServer({ maxTls: 2, maxHandshakes: 2 }, async ({ open, release }) => {
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
    assert.match(await get(newest, '/'), /^HTTP\/1\.1 200/);
  });
});

void it('closes an idle connection that never carried a request before one that did, however recently used', async () => {
  await withServer({ maxTls: 2, maxHandshakes: 2 }, async ({ open }) => {
    const keepAlive = await open();
    assert.match(await get(keepAlive, '/'), /^HTTP\/1\.1 200/);
    const flood = await open();
    const floodClosed = closed(flood);
    const keptClosed = closed(keepAlive);
    await open();
    assert.equal(await floodClosed, true, 'the connection that only connected made room');
    assert.equal(await keptClosed, false, 'the keep-alive connection that carried a request stayed');
    assert.match(await get(keepAlive, '/'), /^HTTP\/1\.1 200/, 'and still carries requests');
  });
});

void it('closes the oldest connection still in its handshake past the cap, so silent ones cannot hold the door', async () => {
  await withServer({ maxTls: 4, maxHandshakes: 2 }, async ({ open, silent }) => {
    const first = await silent();
    const second = await silent();
    const firstClosed = closed(first);
    const secondClosed = closed(second);
    const third = await silent();
    assert.equal(await firstClosed, true, 'the oldest handshake made room');
    assert.equal(await secondClosed, false);
    const secondNowClosed = closed(second);
    const thirdClosed = closed(third);
    const tls = await open();
    assert.equal(await secondNowClosed, true, 'a client that says hello takes the place of the oldest silent one');
    assert.equal(await thirdClosed, false);
    assert.match(await get(tls, '/'), /^HTTP\/1\.1 200/, 'a client that says hello gets through');
  });
});

void it('past the handshake cap closes the flooding address handshakes, never an older one of another address', async () => {
  await withServer({ maxTls: 4, maxHandshakes: 2 }, async ({ open, silent }) => {
    const apiServer = await silent('127.0.0.1');
    const apiServerClosed = closed(apiServer);
    const flood: Socket[] = [];
    for (let i = 0; i < 6; i++) flood.push(await silent('127.0.0.2'));
    const floodClosed = await Promise.all(flood.map(closed));
    assert.equal(await apiServerClosed, false, 'the oldest handshake stayed: its address holds the fewest');
    assert.deepEqual(
      floodClosed,
      [true, true, true, true, true, false],
      'the flood made room from its own connections',
    );
    assert.match(await get(await open(), '/'), /^HTTP\/1\.1 200/);
  });
});
