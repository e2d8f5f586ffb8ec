// One small HTTP(S) client for test helpers and the demo: send a request, collect the whole answer as text.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { defined } from '../injector/defined.ts';

export interface HttpAnswer {
  readonly status: number;
  readonly text: string;
}

export interface HttpCall {
  readonly method: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | undefined;
  /** PEM of the CA that signs the server certificate (https only). */
  readonly ca?: string | undefined;
  /** The name the certificate is checked against (and sent as SNI), when it is not the URL's host (https only). */
  readonly servername?: string;
  readonly timeoutMs: number;
  /** The error raised when the server does not answer within timeoutMs. */
  readonly timeoutMessage?: string;
}

export function httpCall(url: URL, call: HttpCall): Promise<HttpAnswer> {
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const options = {
      method: call.method,
      headers: { ...call.headers },
      timeout: call.timeoutMs,
      ...defined({ ca: call.ca }),
      ...defined({ servername: call.servername }),
    };
    const req = send(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(call.timeoutMessage ?? `no answer within ${call.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(call.body);
  });
}
