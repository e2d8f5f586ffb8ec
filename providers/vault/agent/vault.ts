// Vault/OpenBao provider: a token session (vault-session.ts: login with the pod's identity — kubernetes, jwt,
// approle, or a token file — renewal, re-login, the 403 retry) and a reader on top of it (vault-reader.ts: KV
// v1 and v2, dynamic secrets and their leases). The refresh loop only deals with secrets and leases; the token
// lives inside the provider, and a new token is reported through watch(onChange), because Vault revokes a
// token's leases with it and dynamic credentials must then be fetched again. References with parameters issue
// PKI certificates (vault-pki.ts) with the same session: one login serves both.
import { readFileSync } from 'node:fs';
import type { VaultSettings } from '../../../injector/agent-config.ts';
import { caPemProblem } from '../../../injector/vault-ca.ts';
import { errnoOf } from '../../../agent/errno.ts';
import { ProviderError } from '../../../agent/provider.ts';
import type { FetchOutcome, ProviderDeps, ProviderFactory, SecretProvider } from '../../../agent/provider.ts';
import { answerEach, readDistinct } from '../../../agent/providers/concurrency.ts';
import { proxyEnvOf } from '../../../agent/providers/proxy-env.ts';
import type { SecretReference } from '../../../injector/reference.ts';
import { createVaultClient } from './vault-client.ts';
import type { VaultClient } from './vault-client.ts';
import { fromVaultError } from './vault-errors.ts';
import { VaultIssuer } from './vault-pki.ts';
import { VaultReader } from './vault-reader.ts';
import { VaultSession, type VaultSessionOptions } from './vault-session.ts';
import { defined } from '../../../injector/defined.ts';

const READ_CONCURRENCY = 8;

export interface VaultProviderOptions extends VaultSessionOptions {
  readonly client?: VaultClient;
}

/** The operation name counted for a call (metric label: a route, never an id or a value). */
function operationOf(method: 'GET' | 'POST', path: string): string {
  if (/^auth\/[^/]+(\/.+)?\/login$/.test(path)) return 'login';
  if (path.startsWith('auth/token/')) return `token/${path.slice('auth/token/'.length)}`;
  if (path.startsWith('sys/internal/ui/mounts/')) return 'sys/mounts';
  if (path.startsWith('sys/leases/')) return path;
  if (method === 'POST' && /\/issue\/[^/]+$/.test(path)) return 'pki/issue';
  return method === 'GET' ? 'read' : 'write';
}

function countingClient(client: VaultClient, deps: ProviderDeps): VaultClient {
  return {
    read(path, token, schema) {
      deps.countCall('vault', operationOf('GET', path));
      return client.read(path, token, schema);
    },
    write(path, body, token, schema) {
      deps.countCall('vault', operationOf('POST', path));
      return client.write(path, body, token, schema);
    },
  };
}

function settingsOf(deps: ProviderDeps): Readonly<VaultSettings> {
  const settings = deps.config.vault;
  if (settings === undefined)
    throw new ProviderError(
      'CONFIG',
      'vault: no vault settings in the agent config (sidekey.io/vault-addr or the webhook default)',
    );
  return settings;
}

/** The CA to trust: the mounted file (sidekey.io/vault-ca, vault.caFrom), else the configured PEM (vault.caCert). */
function readCa(settings: Readonly<VaultSettings>): string | undefined {
  if (settings.caFile === undefined) return settings.caCert;
  let pem: string;
  try {
    pem = readFileSync(settings.caFile, 'utf8');
  } catch (error) {
    throw new ProviderError(
      'CONFIG',
      `vault: cannot read the CA file ${settings.caFile} (${errnoOf(error) ?? 'error'})`,
    );
  }
  const problem = caPemProblem(pem, `the CA file ${settings.caFile}`);
  if (problem !== undefined) throw new ProviderError('CONFIG', `vault: ${problem}`);
  return pem;
}

function buildClient(settings: Readonly<VaultSettings>, env: ProviderDeps['env']): VaultClient {
  const ca = readCa(settings);
  const proxy = proxyEnvOf(env);
  return createVaultClient({
    addr: settings.addr,
    ...defined({ namespace: settings.namespace }),
    ...defined({ ca }),
    ...defined({ proxyEnv: proxy }),
  });
}

/** The Vault provider implements every optional member of the interface. */
export type VaultProvider = SecretProvider & Required<Pick<SecretProvider, 'renewLease' | 'revoke' | 'watch'>>;

export function createVaultProvider(deps: ProviderDeps, options: VaultProviderOptions = {}): VaultProvider {
  const settings = settingsOf(deps);
  const client = countingClient(options.client ?? buildClient(settings, deps.env), deps);
  const session = new VaultSession(client, settings, deps, options);
  const reader = new VaultReader(client, session, deps);
  const issuer = new VaultIssuer(client, session);
  const fetchOne = (ref: SecretReference): ReturnType<VaultReader['read']> =>
    ref.query === undefined ? reader.read(ref) : issuer.issue({ ...ref, query: ref.query });
  return {
    name: 'vault',
    async fetchMany(refs): Promise<readonly FetchOutcome[]> {
      const answers = await readDistinct(refs, READ_CONCURRENCY, async (ref) => {
        try {
          return { ok: true, fetched: await fetchOne(ref) };
        } catch (error) {
          return { ok: false, error: fromVaultError(error) };
        }
      });
      return answerEach('vault', refs, answers);
    },
    renewLease: (lease) => reader.renewLease(lease),
    revoke: (leases) => session.retire((token) => reader.revokeLeases(leases, token)),
    watch: (onChange) => session.watch(onChange),
    close(): Promise<void> {
      session.close();
      return Promise.resolve();
    },
  };
}

export const createProvider: ProviderFactory = (deps) => createVaultProvider(deps);
