// The typed adapter over node-vault. node-vault builds the requests (URL, the X-Vault-Namespace header) and
// sends them through our node:http/https transport (vault-transport.ts) instead of axios; everything else is ours:
// - only its generic read/write calls are used. Its generated commands (kubernetesLogin, tokenRenewSelf, …)
//   validate with tv4 and set client.token as a side effect, and its start*Renewal timers overflow Node's
//   timer limit for long TTLs (fires after 1 ms) and never log in again, so they are never called;
// - the token travels per request (X-Vault-Token), so a re-login cannot race with calls in flight;
// - node-vault's implicit environment (VAULT_TOKEN, VAULT_NAMESPACE, VAULT_PREFIX, VAULT_SKIP_VERIFY) and its
//   `debug` output (which prints request bodies, login secrets included) are switched off;
// - every answer is validated with zod; errors become VaultCallError values with the HTTP status and Vault's
//   own message but never the transport error object (transport errors of HTTP clients carry the request
//   headers, token included).
import nodeVault from 'node-vault';
import type * as z from 'zod/mini';
import { requestPromiseFor } from './vault-transport.ts';
import type { TransportOptions } from './vault-transport.ts';
import { defined } from '../../../injector/defined.ts';

export interface VaultClientOptions extends TransportOptions {
  readonly addr: string;
  readonly namespace?: string;
  readonly timeoutMs?: number;
}

/** A failed call: status 0 means no HTTP answer (network, TLS, timeout); `network` names the cause. */
export class VaultCallError extends Error {
  readonly status: number;
  readonly network?: string;
  /** Vault's own error text of an HTTP answer (names paths, roles and policies, never secret data). */
  readonly detail: string;
  constructor(message: string, status: number, network?: string, detail = '') {
    super(message);
    this.name = 'VaultCallError';
    this.status = status;
    this.detail = detail;
    if (network !== undefined) this.network = network;
  }
}

export interface VaultClient {
  read<T>(path: string, token: string | undefined, schema: z.ZodMiniType<T>): Promise<T>;
  write<T>(
    path: string,
    body: Readonly<Record<string, unknown>>,
    token: string | undefined,
    schema: z.ZodMiniType<T>,
  ): Promise<T>;
}

interface ErrorShape {
  readonly response?: { readonly statusCode?: unknown; readonly body?: unknown };
  readonly code?: unknown;
  readonly message?: unknown;
}

function vaultMessages(body: unknown): string {
  if (typeof body !== 'object' || body === null) return '';
  const errors = (body as { errors?: unknown }).errors;
  return Array.isArray(errors)
    ? errors
        .filter((e) => typeof e === 'string')
        .join('; ')
        .slice(0, 300)
    : '';
}

function toCallError(error: unknown, method: string, path: string): VaultCallError {
  const shape: ErrorShape = typeof error === 'object' && error !== null ? error : {};
  const status = shape.response?.statusCode;
  if (typeof status === 'number') {
    const detail = vaultMessages(shape.response?.body);
    return new VaultCallError(
      `vault ${method} ${path}: HTTP ${status}${detail === '' ? '' : ` (${detail})`}`,
      status,
      undefined,
      detail,
    );
  }
  const code = typeof shape.code === 'string' ? shape.code : 'ERR_NETWORK';
  return new VaultCallError(`vault ${method} ${path}: no answer (${code})`, 0, code);
}

export function createVaultClient(options: VaultClientOptions): VaultClient {
  const client = nodeVault({
    endpoint: options.addr,
    apiVersion: 'v1',
    pathPrefix: '',
    ...defined({ namespace: options.namespace }),
    debug: () => undefined,
    // The transport always verifies certificates, so node-vault's VAULT_SKIP_VERIFY has no effect.
    'request-promise': requestPromiseFor({
      ...defined({ ca: options.ca }),
      ...defined({ proxyEnv: options.proxyEnv }),
    }),
    requestOptions: { timeout: options.timeoutMs ?? 10_000 },
  });
  // node-vault falls back to VAULT_TOKEN / VAULT_NAMESPACE / VAULT_PREFIX from the environment: undo that.
  client.token = '';
  (client as { namespace?: string | undefined }).namespace = options.namespace;
  (client as { pathPrefix?: string }).pathPrefix = '';

  const headers = (token: string | undefined): Record<string, string> =>
    token === undefined ? {} : { 'X-Vault-Token': token };

  const parse = <T>(schema: z.ZodMiniType<T>, body: unknown, method: string, path: string): T => {
    const parsed = schema.safeParse(body ?? {});
    if (!parsed.success) {
      const where = parsed.error.issues.map((i) => i.path.join('.') || '(root)').join(', ');
      throw new VaultCallError(`vault ${method} ${path}: unexpected answer (at ${where})`, 200);
    }
    return parsed.data;
  };

  return {
    async read<T>(path: string, token: string | undefined, schema: z.ZodMiniType<T>): Promise<T> {
      let body: unknown;
      try {
        body = await client.read(path, { headers: headers(token) });
      } catch (error) {
        throw toCallError(error, 'GET', path.split('?')[0] ?? path);
      }
      return parse(schema, body, 'GET', path);
    },
    async write<T>(
      path: string,
      data: Readonly<Record<string, unknown>>,
      token: string | undefined,
      schema: z.ZodMiniType<T>,
    ): Promise<T> {
      let body: unknown;
      try {
        body = await client.write(path, data, { headers: headers(token) });
      } catch (error) {
        throw toCallError(error, 'POST', path);
      }
      return parse(schema, body, 'POST', path);
    },
  };
}
