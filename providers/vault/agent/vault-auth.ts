// Logging in to Vault/OpenBao with the pod's own identity. Every credential file is re-read at every login:
// kubelet rotates projected service-account tokens, and secret-ids are rotated by whoever provisions them.
import { readFile } from 'node:fs/promises';
import * as z from 'zod/mini';
import type { VaultSettings } from '../../../injector/agent-config.ts';
import { errnoOf } from '../../../agent/errno.ts';
import { ProviderError } from '../../../agent/provider.ts';
import type { VaultClient } from './vault-client.ts';

/** Where kubelet mounts the pod's service-account token (kubernetes auth default). */
export const SERVICE_ACCOUNT_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface VaultToken {
  readonly token: string;
  /** TTL when issued or last renewed, ms; 0 = no expiry (e.g. a root or periodic-less static token). */
  readonly ttlMs: number;
  readonly renewable: boolean;
}

const authAnswer = z.object({
  auth: z.object({
    client_token: z.string().check(z.minLength(1)),
    lease_duration: z.int().check(z.gte(0)),
    renewable: z.boolean(),
  }),
});
const lookupAnswer = z.object({ data: z.object({ ttl: z.int().check(z.gte(0)), renewable: z.optional(z.boolean()) }) });

async function readCredential(file: string | undefined, what: string): Promise<string> {
  if (file === undefined) throw new ProviderError('CONFIG', `vault: ${what} file is not configured`);
  try {
    const text = (await readFile(file, 'utf8')).trim();
    if (text === '') throw new Error('empty');
    return text;
  } catch (error) {
    // The file may not be there yet (a projected token is mounted slightly later): the next login reads it again.
    throw new ProviderError(
      'AUTH_FAILED',
      `vault: cannot read the ${what} file ${file} (${errnoOf(error) ?? 'empty'})`,
    );
  }
}

function loginBody(settings: Readonly<VaultSettings>, jwt: string): Record<string, string> {
  if (settings.role === undefined)
    throw new ProviderError('CONFIG', `vault: ${settings.auth} auth needs a role (sidekey.io/vault-role)`);
  return { role: settings.role, jwt };
}

/**
 * Logs in (or, for token auth, looks the token up) and returns the token with its TTL. Network and HTTP errors
 * propagate as VaultCallError.
 */
export async function login(client: VaultClient, settings: Readonly<VaultSettings>): Promise<VaultToken> {
  const mount = `auth/${settings.authPath}/login`;
  switch (settings.auth) {
    case 'token': {
      const token = await readCredential(settings.tokenFile, 'token');
      const { data } = await client.read('auth/token/lookup-self', token, lookupAnswer);
      return { token, ttlMs: data.ttl * 1000, renewable: data.renewable ?? false };
    }
    case 'kubernetes':
    case 'jwt': {
      const jwt = await readCredential(
        settings.tokenFile ?? (settings.auth === 'kubernetes' ? SERVICE_ACCOUNT_TOKEN_FILE : undefined),
        'JWT',
      );
      const { auth } = await client.write(mount, loginBody(settings, jwt), undefined, authAnswer);
      return { token: auth.client_token, ttlMs: auth.lease_duration * 1000, renewable: auth.renewable };
    }
    case 'approle': {
      const [roleId, secretId] = await Promise.all([
        readCredential(settings.roleIdFile, 'role-id'),
        readCredential(settings.secretIdFile, 'secret-id'),
      ]);
      const { auth } = await client.write(mount, { role_id: roleId, secret_id: secretId }, undefined, authAnswer);
      return { token: auth.client_token, ttlMs: auth.lease_duration * 1000, renewable: auth.renewable };
    }
  }
}

/** renew-self: the renewed TTL (it stops growing near the token's max TTL). */
export async function renewSelf(client: VaultClient, token: string): Promise<VaultToken> {
  const { auth } = await client.write('auth/token/renew-self', {}, token, authAnswer);
  return { token, ttlMs: auth.lease_duration * 1000, renewable: auth.renewable };
}
