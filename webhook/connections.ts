// A cap on the TLS connections the webhook keeps. Refusing new connections past a cap (Node's maxConnections)
// would let anyone who holds that many idle connections lock the API server out; instead a new connection
// past the cap closes the least recently used one that is not serving a request. The API server's keep-alive
// connections carry its admissions, so a flood of idle connections evicts itself first.
import type { Server } from 'node:https';
import type { TLSSocket } from 'node:tls';

export function capConnections(server: Server, max: number): void {
  /** Least recently used first. */
  const open = new Set<TLSSocket>();
  const requests = new WeakMap<TLSSocket, number>();
  server.on('secureConnection', (socket: TLSSocket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    if (open.size <= max) return;
    for (const old of open) {
      if (old !== socket && (requests.get(old) ?? 0) === 0) {
        old.destroy();
        open.delete(old);
        return;
      }
    }
  });
  server.on('request', (req, res) => {
    const { socket } = req as unknown as { socket: TLSSocket };
    open.delete(socket);
    open.add(socket);
    requests.set(socket, (requests.get(socket) ?? 0) + 1);
    res.once('close', () => requests.set(socket, (requests.get(socket) ?? 1) - 1));
  });
}
