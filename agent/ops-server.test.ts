// The ops port under abuse: connections are capped, silent and idle ones are closed, oversized headers refused.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { createMetrics } from './metrics.ts';
import { DEFAULT_OPS_LIMITS, startOpsServer, type OpsLimits } from './ops-server.ts';

async function server(t: TestContext, limits: Partial<OpsLimits> = {}): Promise<number> {
  const ops = await startOpsServer(
    0,
    { started: () => true, staleFiles: () => [], statusBody: () => '{"version":1}' },
    createMetrics().registry,
    '127.0.0.1',
    { ...DEFAULT_OPS_LIMITS, ...limits },
  );
  t.after(() => ops.close());
  return ops.port;
}

/** A TCP connection that sends nothing; resolves once connected. */
async function silent(t: TestContext, port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  return socket;
}

/** Whether the server closes the socket within `withinMs` (a guard, not a timing assertion). */
function closedWithin(socket: Socket, withinMs: number): Promise<boolean> {
  if (socket.destroyed || socket.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      resolve(false);
    }, withinMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function statusOf(port: number, headers: Record<string, string> = {}): Promise<number> {
  const socket = connect(port, '127.0.0.1');
  const lines = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(`GET /healthz HTTP/1.1\r\nhost: agent\r\nconnection: close\r\n${lines}\r\n`);
  let answer = '';
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  await once(socket, 'close');
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
}

void describe('ops server limits', () => {
  void it('closes connections beyond the cap on accept; those within it stay until idle', async (t) => {
    const port = await server(t, { maxConnections: 4 });
    const held = await Promise.all(Array.from({ length: 4 }, () => silent(t, port)));
    const extra = await silent(t, port);
    assert.equal(await closedWithin(extra, 2000), true, 'the fifth connection is closed');
    assert.equal(
      held.some((s) => s.destroyed),
      false,
    );
  });

  void it('closes a connection that never sends a request (half-open flood)', async (t) => {
    const port = await server(t, { idleTimeoutMs: 300, headersTimeoutMs: 300 });
    const socket = await silent(t, port);
    assert.equal(await closedWithin(socket, 5000), true);
    assert.equal(await statusOf(port), 200, 'and serves the next one');
  });

  void it('closes a connection that sends its headers too slowly', async (t) => {
    const port = await server(t, { headersTimeoutMs: 300, idleTimeoutMs: 60_000, checkIntervalMs: 100 });
    const socket = await silent(t, port);
    socket.write('GET /healthz HTTP/1.1\r\n');
    const drip = setInterval(() => socket.write('x-drip: 1\r\n'), 100);
    t.after(() => {
      clearInterval(drip);
    });
    assert.equal(await closedWithin(socket, 5000), true);
  });

  void it('serves /status as JSON, uncached; other methods are refused', async (t) => {
    const port = await server(t);
    const answer = await fetch(`http://127.0.0.1:${port}/status`);
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('content-type'), 'application/json');
    assert.equal(answer.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await answer.json(), { version: 1 });
    assert.equal((await fetch(`http://127.0.0.1:${port}/status`, { method: 'POST' })).status, 405);
  });

  void it('refuses headers over 8 KiB with 431', async (t) => {
    const port = await server(t);
    assert.equal(await statusOf(port, { 'x-big': 'a'.repeat(9000) }), 431);
    assert.equal(await statusOf(port, { 'x-small': 'a'.repeat(1000) }), 200);
  });
});
