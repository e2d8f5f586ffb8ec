// Caps on the TLS connections the webhook holds, so that a flood of connections costs it bounded work at a time
// and cannot lock the API server out. Refusing new connections past a cap (Node's maxConnections) would let
// anyone who holds that many idle connections do just that; instead a new connection past a cap closes an old
// one:
// - handshakes: the server side of a TLS handshake is the costly part of a connection (about a millisecond of
//   the one thread here with ECDSA P-256, twice that with RSA 2048), and a flood starts hundreds at once. Past
//   `maxHandshakes` under way, a new connection closes the oldest one still in its handshake, so a burst
//   accepted in one go costs about `maxHandshakes` handshakes (each connection closed unread costs a third of
//   one), and connections that never say hello cannot hold the door shut for the API server's next one. The
//   connection closed is the oldest of the address with the most handshakes under way: a flood from one pod
//   closes its own connections, never the API server's new one, however long its handshake waits its turn.
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

/** Raw sockets in their TLS handshake, oldest first, counted per remote address. */
class Handshakes {
  readonly #sockets = new Map<string, Socket>();
  readonly #perAddress = new Map<string, number>();

  get size(): number {
    return this.#sockets.size;
  }

  add(key: string, socket: Socket): void {
    this.#sockets.set(key, socket);
    const address = String(socket.remoteAddress);
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
  }

  delete(key: string, socket?: Socket): void {
    const known = this.#sockets.get(key);
    if (known === undefined || (socket !== undefined && known !== socket)) return;
    this.#sockets.delete(key);
    const address = String(known.remoteAddress);
    const left = (this.#perAddress.get(address) ?? 1) - 1;
    if (left > 0) this.#perAddress.set(address, left);
    else this.#perAddress.delete(address);
  }

  /** The oldest handshake of the address with the most under way (ties: the address counted first). */
  victim(): [string, Socket] | undefined {
    let busiest: string | undefined;
    let most = 0;
    for (const [address, count] of this.#perAddress) {
      if (count > most) [busiest, most] = [address, count];
    }
    for (const entry of this.#sockets) if (String(entry[1].remoteAddress) === busiest) return entry;
    return undefined;
  }
}

export function capConnections(server: Server, limits: ConnectionLimits): void {
  const handshaking = new Handshakes();
  server.on('connection', (raw: Socket) => {
    const key = connectionKey(raw);
    handshaking.add(key, raw);
    raw.once('close', () => {
      handshaking.delete(key, raw);
    });
    if (handshaking.size <= limits.maxHandshakes) return;
    const victim = handshaking.victim();
    if (victim === undefined) return;
    handshaking.delete(victim[0]);
    victim[1].destroy();
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
