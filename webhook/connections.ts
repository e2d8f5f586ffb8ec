// Caps on the TLS connections the webhook holds, so that a flood of connections costs it bounded work at a time
// and cannot lock the API server out. Refusing new connections past a cap (Node's maxConnections) would let
// anyone who holds that many idle connections do just that; instead a new connection past a cap closes an old
// one:
// - handshakes: the server side of a TLS handshake is the costly part of a connection (about a millisecond of
//   the one thread here with ECDSA P-256, twice that with RSA 2048), and a flood starts hundreds at once. Past
//   `maxHandshakes` under way, a new connection closes the oldest one still in its handshake, so a burst
//   accepted in one go costs about `maxHandshakes` handshakes (each connection closed unread costs a third of
//   one), and connections that never say hello cannot hold the door shut for the API server's next one.
// - established: past `maxTls`, a new one closes an idle one that has never carried a request (a flood's)
//   first, else the least recently used idle one, never one serving a request. The API server's keep-alive
//   connections carry its admissions, so they outlive any number of connections that only connect.
import type { Socket } from 'node:net';
import type { Server } from 'node:https';
import type { TLSSocket } from 'node:tls';

export interface ConnectionLimits {
  /** TLS connections kept once their handshake is done. */
  readonly maxTls: number;
  /** TCP connections in their TLS handshake at once. */
  readonly maxHandshakes: number;
}

/** The connection a raw socket and the TLS socket over it share (the TLS socket keeps no documented link). */
function connectionKey(socket: Socket): string {
  return `${String(socket.remoteAddress)}|${String(socket.remotePort)}|${String(socket.localAddress)}|${String(socket.localPort)}`;
}

export function capConnections(server: Server, limits: ConnectionLimits): void {
  /** Raw sockets in their handshake, oldest first. */
  const handshaking = new Map<string, Socket>();
  server.on('connection', (raw: Socket) => {
    const key = connectionKey(raw);
    handshaking.set(key, raw);
    raw.once('close', () => {
      if (handshaking.get(key) === raw) handshaking.delete(key);
    });
    if (handshaking.size <= limits.maxHandshakes) return;
    const [oldestKey, oldest] = handshaking.entries().next().value ?? [];
    if (oldestKey === undefined || oldest === undefined) return;
    handshaking.delete(oldestKey);
    oldest.destroy();
  });

  /** Least recently used first. */
  const open = new Set<TLSSocket>();
  const requests = new WeakMap<TLSSocket, number>();
  const evict = (spare: TLSSocket): void => {
    let lru: TLSSocket | undefined;
    for (const old of open) {
      if (old === spare || (requests.get(old) ?? 0) > 0) continue;
      if (!requests.has(old)) {
        lru = old;
        break;
      }
      lru ??= old;
    }
    if (lru === undefined) return;
    lru.destroy();
    open.delete(lru);
  };
  server.on('secureConnection', (socket: TLSSocket) => {
    handshaking.delete(connectionKey(socket));
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    if (open.size > limits.maxTls) evict(socket);
  });
  server.on('request', (req, res) => {
    const { socket } = req as unknown as { socket: TLSSocket };
    open.delete(socket);
    open.add(socket);
    requests.set(socket, (requests.get(socket) ?? 0) + 1);
    res.once('close', () => requests.set(socket, (requests.get(socket) ?? 1) - 1));
  });
}
