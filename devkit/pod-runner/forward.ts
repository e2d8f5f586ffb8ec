// Byte-for-byte TCP forwarding across network namespaces through Unix sockets (a path on the shared
// filesystem is reachable from every namespace). A client connects to the Unix socket, writes one header
// line "<port>\n", and from then on the stream is piped to 127.0.0.1:<port> on the serving side.
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';

const MAX_HEADER = 16;

function pipeBoth(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const close = (): void => {
    a.destroy();
    b.destroy();
  };
  a.once('error', close);
  b.once('error', close);
  a.once('close', close);
  b.once('close', close);
}

/** Serves `socketPath`: each connection names a port in its first line and is piped to 127.0.0.1:<port>. */
export function serveUnixToTcp(socketPath: string, allowed: (port: number) => boolean = () => true): Promise<Server> {
  const server = createServer((client) => {
    let header = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      header = Buffer.concat([header, chunk]);
      const newline = header.indexOf(10);
      if (newline < 0) {
        if (header.length > MAX_HEADER) client.destroy();
        return;
      }
      client.off('data', onData);
      client.pause();
      const port = Number(header.subarray(0, newline).toString('ascii'));
      if (!Number.isInteger(port) || port < 1 || port > 65_535 || !allowed(port)) {
        client.destroy();
        return;
      }
      const rest = header.subarray(newline + 1);
      const upstream = connect(port, '127.0.0.1', () => {
        if (rest.length > 0) upstream.write(rest);
        pipeBoth(client, upstream);
        client.resume();
      });
      upstream.once('error', () => client.destroy());
    };
    client.on('data', onData);
    client.once('error', () => client.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      resolve(server);
    });
  });
}

/**
 * Listens on <host>:<port> (127.0.0.1 unless given) and pipes each connection through `socketPath` to
 * 127.0.0.1:<farPort> on the other side (the same port unless given).
 */
export function listenTcpToUnix(
  port: number,
  socketPath: string,
  farPort: number = port,
  host = '127.0.0.1',
): Promise<Server> {
  const server = createServer((client) => {
    client.pause();
    const upstream = connectThrough(socketPath, farPort);
    upstream.once('connect', () => {
      pipeBoth(client, upstream);
      client.resume();
    });
    upstream.once('error', () => client.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      resolve(server);
    });
  });
}

/** A socket that reaches 127.0.0.1:<port> on the far side of `socketPath` (usable as http's createConnection). */
export function connectThrough(socketPath: string, port: number): Socket {
  const socket = connect(socketPath);
  socket.write(`${port}\n`);
  return socket;
}
