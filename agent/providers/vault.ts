// Vault/OpenBao provider: logs in with the pod's identity (kubernetes, jwt, approle, or a token file), reads
// KV v1 and v2 (the mount's version comes from sys/internal/ui/mounts/<path>), and dynamic secrets that carry
// a lease (database/creds/<role>, …).
//
// Token lifecycle (inside the provider, so the refresh loop only deals with secrets and leases):
// - the token is renewed with renew-self at ~2/3 of its TTL plus jitter (Vault's lifetime-watcher rule, shared
//   with lease planning in agent/timing.ts), on an injectable, clamped, unref'd timer;
// - when renewals stop extending it (near its max TTL) or it is not renewable, the provider logs in again
//   before it expires; failed renewals are retried with backoff, and a token found dead logs in again;
// - any 403 on a data call drops the token, logs in again and retries once (unless the token is brand new:
//   then it is a policy problem and PERMISSION_DENIED);
// - a new token after the first one is reported through watch(onChange): Vault revokes a token's leases with
//   it, so dynamic credentials must be fetched again under the new token.
// Leases (renewLease) are planned by the refresh loop; the provider renews them with sys/leases/renew and
// answers LEASE_EXPIRED when Vault no longer knows or renews them, so the loop fetches a new credential.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as z from 'zod/mini';
import type { VaultSettings } from '../../injector/agent-config.ts';
import { caPemProblem } from '../../injector/vault-ca.ts';
import type { SecretReference } from '../../injector/reference.ts';
import { errnoOf } from '../errno.ts';
import { backoffDelay, clampDelay, planLease } from '../timing.ts';
import { ProviderError } from '../provider.ts';
import type { FetchOutcome, Fetched, Lease, ProviderDeps, ProviderFactory, SecretProvider } from '../provider.ts';
import { answerEach, readDistinct } from './concurrency.ts';
import { proxyEnvOf } from './proxy-env.ts';
import { login, renewSelf } from './vault-auth.ts';
import { VaultCallError, createVaultClient } from './vault-client.ts';
import type { VaultClient } from './vault-client.ts';
import { fromVaultError, leaseGone } from './vault-errors.ts';

const READ_CONCURRENCY = 8;
/** A 403 within this time of a login is a policy problem, not a stale token. */
const FRESH_TOKEN_MS = 5_000;

export interface TimerApi {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export interface VaultProviderOptions {
  readonly client?: VaultClient;
  readonly timers?: TimerApi;
  readonly random?: () => number;
}

const realTimers: TimerApi = {
  set(fn, ms) {
    const timer = setTimeout(fn, clampDelay(ms));
    timer.unref();
    return timer;
  },
  clear(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

const record = z.record(z.string(), z.unknown());
const mountAnswer = z.object({
  data: z.object({ path: z.string(), type: z.string(), options: z.nullish(z.record(z.string(), z.string())) }),
});
const kv2Answer = z.object({
  data: z.object({ data: z.nullable(record), metadata: z.looseObject({ version: z.int() }) }),
});
const logicalAnswer = z.object({
  lease_id: z._default(z.string(), ''),
  lease_duration: z._default(z.int().check(z.gte(0)), 0),
  renewable: z._default(z.boolean(), false),
  data: z.nullable(record),
});
const leaseAnswer = z.object({ lease_id: z.string(), lease_duration: z.int().check(z.gte(0)), renewable: z.boolean() });
const anything = z.unknown();

interface TokenState {
  readonly token: string;
  readonly ttlMs: number;
  readonly issuedTtlMs: number;
  readonly renewable: boolean;
  /** Epoch ms of the login or the last renewal. */
  readonly renewedAt: number;
  readonly issuedAt: number;
}

interface Mount {
  readonly path: string;
  readonly kvVersion: 1 | 2 | undefined;
}

/** Content hash for secrets without a backend version (KV v1, unleased logical reads): key order does not matter. */
function contentVersion(data: Readonly<Record<string, unknown>>): string {
  const canonical = JSON.stringify(data, (_key, value: unknown) =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : value,
  );
  return `sha256:${createHash('sha256').update(canonical).digest('hex')}`;
}

/** The operation name counted for a call (metric label: a route, never an id or a value). */
function operationOf(method: 'GET' | 'POST', path: string): string {
  if (/^auth\/[^/]+(\/.+)?\/login$/.test(path)) return 'login';
  if (path.startsWith('auth/token/')) return `token/${path.slice('auth/token/'.length)}`;
  if (path.startsWith('sys/internal/ui/mounts/')) return 'sys/mounts';
  if (path.startsWith('sys/leases/')) return path;
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
  if (settings === undefined) throw new ProviderError('CONFIG', 'vault: no vault settings in the agent config (sidekey.io/vault-addr or the webhook default)', false);
  return settings;
}

/** The CA to trust: the mounted file (sidekey.io/vault-ca, vault.caFrom), else the configured PEM (vault.caCert). */
function readCa(settings: Readonly<VaultSettings>): string | undefined {
  if (settings.caFile === undefined) return settings.caCert;
  let pem: string;
  try {
    pem = readFileSync(settings.caFile, 'utf8');
  } catch (error) {
    throw new ProviderError('CONFIG', `vault: cannot read the CA file ${settings.caFile} (${errnoOf(error) ?? 'error'})`, false);
  }
  const problem = caPemProblem(pem, `the CA file ${settings.caFile}`);
  if (problem !== undefined) throw new ProviderError('CONFIG', `vault: ${problem}`, false);
  return pem;
}

function buildClient(settings: Readonly<VaultSettings>, env: ProviderDeps['env']): VaultClient {
  const ca = readCa(settings);
  const proxy = proxyEnvOf(env);
  return createVaultClient({
    addr: settings.addr,
    ...(settings.namespace === undefined ? {} : { namespace: settings.namespace }),
    ...(ca === undefined ? {} : { ca }),
    ...(proxy === undefined ? {} : { proxyEnv: proxy }),
  });
}

/** The Vault provider implements every optional member of the interface. */
export type VaultProvider = SecretProvider & Required<Pick<SecretProvider, 'renewLease' | 'revoke' | 'watch'>>;

export function createVaultProvider(deps: ProviderDeps, options: VaultProviderOptions = {}): VaultProvider {
  const settings = settingsOf(deps);
  const client = countingClient(options.client ?? buildClient(settings, deps.env), deps);
  const timers = options.timers ?? realTimers;
  const random = options.random ?? Math.random;
  const { log } = deps;
  const mounts: Mount[] = [];
  const watchers = new Set<() => void>();
  let current: TokenState | undefined;
  let pending: Promise<TokenState> | undefined;
  let logins = 0;
  let timer: unknown;
  let failures = 0;
  let closed = false;
  // Read through a function: `closed` changes while a renewal awaits.
  const isClosed = (): boolean => closed;

  const stopTimer = (): void => {
    if (timer !== undefined) timers.clear(timer);
    timer = undefined;
  };

  const schedule = (state: TokenState): void => {
    stopTimer();
    if (closed || state.ttlMs === 0) return;
    const now = deps.now();
    const plan = planLease(
      { id: 'token', durationMs: state.ttlMs, renewable: state.renewable, renewedAt: state.renewedAt, issuedAt: state.issuedAt },
      state.issuedTtlMs,
      now,
      random(),
    );
    timer = timers.set(() => void maintain(plan.action), plan.at - now);
  };

  const doLogin = async (): Promise<TokenState> => {
    let token;
    try {
      token = await login(client, settings);
    } catch (error) {
      throw fromVaultError(error, true);
    }
    const now = deps.now();
    const state: TokenState = {
      token: token.token,
      ttlMs: token.ttlMs,
      issuedTtlMs: token.ttlMs,
      renewable: token.renewable,
      renewedAt: now,
      issuedAt: now,
    };
    current = state;
    failures = 0;
    logins += 1;
    log.info({ auth: settings.auth, ttlSeconds: Math.round(token.ttlMs / 1000), renewable: token.renewable }, 'vault login');
    schedule(state);
    if (logins > 1) for (const onChange of watchers) onChange();
    return state;
  };

  /** One login at a time; the new token replaces the current one only when the login succeeded. */
  const relogin = (): Promise<TokenState> => {
    pending ??= doLogin().finally(() => {
      pending = undefined;
    });
    return pending;
  };

  const getToken = (): Promise<TokenState> => (current === undefined ? relogin() : Promise.resolve(current));

  /** Drops `state` if it is still the current token (a concurrent call may have replaced it already). */
  const invalidate = (state: TokenState): void => {
    if (current === state) {
      current = undefined;
      stopTimer();
    }
  };

  /** The timer's work: renew the token, or log in anew (before max TTL, or after the token died). */
  async function maintain(action: 'renew' | 'refetch'): Promise<void> {
    const state = current;
    timer = undefined;
    if (isClosed() || (state === undefined && action === 'renew')) return;
    try {
      if (action === 'refetch' || state === undefined) {
        await relogin();
        return;
      }
      const renewed = await renewSelf(client, state.token);
      current = { ...state, ttlMs: renewed.ttlMs, renewable: renewed.renewable, renewedAt: deps.now() };
      failures = 0;
      schedule(current);
    } catch (error) {
      failures += 1;
      const mapped = fromVaultError(error, action === 'refetch');
      const expiresAt = state === undefined ? 0 : state.renewedAt + state.ttlMs;
      // A dead token (revoked, expired) is replaced now: its leases died with it and must be fetched again.
      const dead = (error instanceof VaultCallError && error.status === 403) || deps.now() >= expiresAt;
      // Vault answers 500 "past the max TTL, cannot renew" at the end of a token's life: log in now instead.
      const spent = error instanceof VaultCallError && /max TTL|not renewable/i.test(error.message);
      log.warn({ code: mapped.code, error: mapped.message, attempt: failures, action }, dead || spent ? 'vault token is spent; logging in again' : 'vault token renewal failed; retrying');
      if (dead && state !== undefined) invalidate(state);
      const backoff = spent ? 0 : backoffDelay(failures, random());
      // A live token is retried before it runs out: never later than half of what is left.
      const retryIn = dead ? backoff : Math.min(backoff, Math.max((expiresAt - deps.now()) / 2, 1000));
      if (!isClosed()) timer = timers.set(() => void maintain(dead || spent ? 'refetch' : action), retryIn);
    }
  }

  /** Runs an authenticated call; a 403 with a token that is not brand new logs in again and retries once. */
  const withToken = async <T>(call: (token: string) => Promise<T>): Promise<T> => {
    const state = await getToken();
    try {
      return await call(state.token);
    } catch (error) {
      if (!(error instanceof VaultCallError) || error.status !== 403 || deps.now() - state.issuedAt < FRESH_TOKEN_MS) throw error;
      log.info('vault answered 403; logging in again');
      invalidate(state);
      const fresh = await getToken();
      return call(fresh.token);
    }
  };

  // Lookups run one at a time, so 50 paths under one mount cost one lookup, not one per path in flight.
  let lookups: Promise<unknown> = Promise.resolve();
  const mountOf = (path: string): Promise<Mount> => {
    const cached = (): Mount | undefined => mounts.find((m) => path.startsWith(m.path));
    const known = cached();
    if (known !== undefined) return Promise.resolve(known);
    const lookup = lookups.then(() => cached() ?? lookupMount(path));
    lookups = lookup.catch(() => undefined);
    return lookup;
  };

  const lookupMount = async (path: string): Promise<Mount> => {
    const { data } = await withToken((t) => client.read(`sys/internal/ui/mounts/${path}`, t, mountAnswer));
    const version = data.options?.version;
    const kv = data.type === 'kv' || data.type === 'generic';
    const mount: Mount = { path: data.path.endsWith('/') ? data.path : `${data.path}/`, kvVersion: kv ? (version === '2' ? 2 : 1) : undefined };
    mounts.push(mount);
    return mount;
  };

  const readOne = async (path: string, version: string | undefined): Promise<Fetched> => {
    const mount = await mountOf(path);
    if (mount.kvVersion === 2) {
      const query = version === undefined ? '' : `?version=${version}`;
      const { data } = await withToken((t) => client.read(`${mount.path}data/${path.slice(mount.path.length)}${query}`, t, kv2Answer));
      if (data.data === null) throw new ProviderError('NOT_FOUND', `vault ${path}: the version is deleted or destroyed`, false);
      return { value: { kind: 'object', value: data.data }, version: String(data.metadata.version) };
    }
    if (version !== undefined) throw new ProviderError('CONFIG', `vault ${path}: @version needs a KV v2 mount`, false);
    const answer = await withToken((t) => client.read(path, t, logicalAnswer));
    if (answer.data === null) throw new ProviderError('NOT_FOUND', `vault ${path}: no data`, false);
    if (answer.lease_id === '') return { value: { kind: 'object', value: answer.data }, version: contentVersion(answer.data) };
    const now = deps.now();
    const lease: Lease = { id: answer.lease_id, durationMs: answer.lease_duration * 1000, renewable: answer.renewable, renewedAt: now, issuedAt: now };
    return { value: { kind: 'object', value: answer.data }, version: answer.lease_id, lease };
  };

  return {
    name: 'vault',
    async fetchMany(refs: readonly SecretReference[]): Promise<readonly FetchOutcome[]> {
      const answers = await readDistinct(refs, READ_CONCURRENCY, async (ref) => {
        try {
          return { ok: true, fetched: await readOne(ref.path, ref.version) };
        } catch (error) {
          return { ok: false, error: fromVaultError(error) };
        }
      });
      return answerEach('vault', refs, answers);
    },
    async renewLease(lease: Lease): Promise<Lease> {
      try {
        const answer = await withToken((t) => client.write('sys/leases/renew', { lease_id: lease.id }, t, leaseAnswer));
        return { ...lease, durationMs: answer.lease_duration * 1000, renewable: answer.renewable, renewedAt: deps.now() };
      } catch (error) {
        if (leaseGone(error)) throw new ProviderError('LEASE_EXPIRED', `vault lease ${lease.id.replace(/\/[^/]*$/, '/…')}: gone or no longer renewable`, false);
        throw fromVaultError(error);
      }
    },
    async revoke(leases: readonly Lease[]): Promise<void> {
      const state = current;
      if (state === undefined) return;
      const attempt = async (what: string, call: () => Promise<unknown>): Promise<void> => {
        try {
          await call();
        } catch (error) {
          log.warn({ code: fromVaultError(error).code, what }, 'vault revoke failed');
        }
      };
      for (const lease of leases) await attempt('lease', () => client.write('sys/leases/revoke', { lease_id: lease.id }, state.token, anything));
      // A token given to us (token auth) belongs to someone else: only tokens we logged in for are revoked.
      if (settings.auth !== 'token') await attempt('token', () => client.write('auth/token/revoke-self', {}, state.token, anything));
      invalidate(state);
    },
    watch(onChange: () => void): () => void {
      watchers.add(onChange);
      return () => watchers.delete(onChange);
    },
    close(): Promise<void> {
      closed = true;
      stopTimer();
      return Promise.resolve();
    },
  };
}

export const createProvider: ProviderFactory = (deps) => createVaultProvider(deps);
