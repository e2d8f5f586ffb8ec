// node-vault's HTTP transport, on node:http/https. node-vault takes a `request-promise`-style function in its
// options and then never calls axios, its default. Axios (with form-data, mime-db and follow-redirects) is a
// third of the Vault provider's code, and it reads globalThis.fetch at load, which makes Node load its bundled
// undici: together ~12 MiB of private memory and ~60 ms before a Vault pod's first file, for the plain JSON
// calls made here. The agent bundle leaves axios out (scripts/build.ts).
//
// The contract node-vault relies on: `defaults(rpDefaults)` returns `(options) => Promise<{ statusCode, body,
// request: { path } }>`, resolving for every HTTP status (rpDefaults.simple is false) with the JSON body parsed.
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { ProxyEnv } from '../../../agent/providers/proxy-env.ts';
import { defined } from '../../../injector/defined.ts';
import { CodedError } from '../../../agent/coded-error.ts';

/** The request options node-vault passes: its rpDefaults, the client's requestOptions and the call's own. */
export interface TransportRequest {
  readonly method: string;
  readonly uri: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** The body to send as JSON; `true` (from rpDefaults) means "JSON answers" and sends no body. */
  readonly json?: unknown;
  readonly timeout?: number;
}

export interface TransportResponse {
  readonly statusCode: number;
  readonly body: unknown;
  readonly request: { readonly path: string };
}

export type Transport = (options: TransportRequest) => Promise<TransportResponse>;

/** Vault answers are small JSON documents; a larger answer is refused rather than buffered without bound. */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 10_000;

/** A failure without an HTTP answer; `code` is the errno-style cause the provider reports (never a URL or header). */
export class TransportError extends CodedError<string> {
  override readonly name = 'TransportError';
}

function parseAnswer(bytes: Buffer): unknown {
  if (bytes.length === 0) return undefined;
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined; // not JSON (a proxy's HTML page): the status code alone tells what happened
  }
}

function readAnswer(
  response: IncomingMessage,
  fail: (error: TransportError) => void,
  done: (bytes: Buffer) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  response.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_ANSWER_BYTES) {
      response.destroy();
      fail(new TransportError('ERR_ANSWER_TOO_LARGE', `the answer exceeds ${MAX_ANSWER_BYTES} bytes`));
      return;
    }
    chunks.push(chunk);
  });
  response.once('end', () => {
    done(Buffer.concat(chunks, size));
  });
  response.on('error', (error: NodeJS.ErrnoException) => {
    fail(new TransportError(error.code ?? 'ECONNRESET', 'the answer was cut off'));
  });
}

export interface TransportOptions {
  /** PEM CA bundle (the agent config's caCert or caFile) trusted for HTTPS instead of the public roots. */
  readonly ca?: string;
  /**
   * HTTPS_PROXY / HTTP_PROXY / NO_PROXY (the agent's environment): Node's own proxy support tunnels https
   * through CONNECT and honours NO_PROXY. Only these agents get it, so nothing else in the agent is proxied.
   */
  readonly proxyEnv?: ProxyEnv;
}

/**
 * The transport for one client. Certificates are always verified. Connections are kept alive between calls
 * and dropped after 30 s idle.
 */
export function createTransport(options: TransportOptions = {}): Transport {
  const { ca, proxyEnv } = options;
  const proxy = proxyEnv === undefined ? {} : { proxyEnv };
  const httpAgent = new HttpAgent({ keepAlive: true, timeout: 30_000, ...proxy });
  // Made on the first HTTPS call: in the agent bundle, node:https (and OpenSSL's TLS side) loads only then.
  let httpsAgent: HttpsAgent | undefined;
  const secureAgent = (): HttpsAgent =>
    (httpsAgent ??= new HttpsAgent({
      keepAlive: true,
      timeout: 30_000,
      rejectUnauthorized: true,
      ...proxy,
      ...defined({ ca }),
    }));

  return (options) =>
    new Promise<TransportResponse>((resolve, reject) => {
      const url = new URL(options.uri);
      const body =
        typeof options.json === 'object' && options.json !== null
          ? Buffer.from(JSON.stringify(options.json))
          : undefined;
      const headers: OutgoingHttpHeaders = { accept: 'application/json', ...options.headers };
      if (body !== undefined)
        Object.assign(headers, { 'content-type': 'application/json', 'content-length': body.length });
      const https = url.protocol === 'https:';
      if (!https && url.protocol !== 'http:') {
        reject(new TransportError('ERR_INVALID_PROTOCOL', `unsupported protocol ${url.protocol}`));
        return;
      }
      const timeoutMs = options.timeout ?? DEFAULT_TIMEOUT_MS;
      const fail = (error: TransportError): void => {
        clearTimeout(deadline);
        request.destroy();
        reject(error);
      };
      // One deadline for the whole call (connect, send, answer), as axios' timeout had.
      const deadline = setTimeout(() => {
        fail(new TransportError('ETIMEDOUT', `no complete answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const request = (https ? httpsRequest : httpRequest)(
        url,
        { method: options.method, headers, agent: https ? secureAgent() : httpAgent },
        (response) => {
          readAnswer(response, fail, (bytes) => {
            clearTimeout(deadline);
            resolve({
              statusCode: response.statusCode ?? 0,
              body: parseAnswer(bytes),
              request: { path: url.pathname },
            });
          });
        },
      );
      request.on('error', (error: NodeJS.ErrnoException) => {
        fail(new TransportError(error.code ?? 'ERR_NETWORK', 'the request failed'));
      });
      request.end(body);
    });
}

/** What node-vault's `request-promise` option expects: an object whose defaults() yields the transport. */
export function requestPromiseFor(options: TransportOptions): { defaults(rpDefaults: unknown): Transport } {
  return { defaults: () => createTransport(options) };
}
