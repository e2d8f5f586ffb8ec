// Reads secrets from Vault/OpenBao with the session's token: KV v1 and v2 (the mount's version comes from
// sys/internal/ui/mounts/<path>), and dynamic secrets that carry a lease (database/creds/<role>, …). Leases are
// planned by the refresh loop; the reader renews them with sys/leases/renew and answers LEASE_EXPIRED when Vault
// no longer knows or renews them, so the loop fetches a new credential.
import { createHash } from 'node:crypto';
import * as z from 'zod/mini';
import type { SecretReference } from '../../../injector/reference.ts';
import { ProviderError } from '../../../agent/provider.ts';
import type { Fetched, Lease, ProviderDeps } from '../../../agent/provider.ts';
import type { VaultClient } from './vault-client.ts';
import { fromVaultError, leaseGone, revokeQuietly } from './vault-errors.ts';
import type { TokenSource } from './vault-session.ts';

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

export class VaultReader {
  readonly #client: VaultClient;
  readonly #session: TokenSource;
  readonly #deps: Pick<ProviderDeps, 'log' | 'now'>;
  readonly #mounts: Mount[] = [];
  // Lookups run one at a time, so 50 paths under one mount cost one lookup, not one per path in flight.
  #lookups: Promise<unknown> = Promise.resolve();

  constructor(client: VaultClient, session: TokenSource, deps: Pick<ProviderDeps, 'log' | 'now'>) {
    this.#client = client;
    this.#session = session;
    this.#deps = deps;
  }

  read(ref: SecretReference): Promise<Fetched> {
    return this.#readOne(ref.path, ref.version);
  }

  async renewLease(lease: Lease): Promise<Lease> {
    try {
      const answer = await this.#session.withToken((t) =>
        this.#client.write('sys/leases/renew', { lease_id: lease.id }, t, leaseAnswer),
      );
      return {
        ...lease,
        durationMs: answer.lease_duration * 1000,
        renewable: answer.renewable,
        renewedAt: this.#deps.now(),
      };
    } catch (error) {
      if (leaseGone(error))
        throw new ProviderError(
          'LEASE_EXPIRED',
          `vault lease ${lease.id.replace(/\/[^/]*$/, '/…')}: gone or no longer renewable`,
        );
      throw fromVaultError(error);
    }
  }

  /** Revokes each lease with `token` (best-effort: failures are logged). */
  async revokeLeases(leases: readonly Lease[], token: string): Promise<void> {
    for (const lease of leases) {
      await revokeQuietly(this.#deps.log, 'lease', () =>
        this.#client.write('sys/leases/revoke', { lease_id: lease.id }, token, z.unknown()),
      );
    }
  }

  #mountOf(path: string): Promise<Mount> {
    const cached = (): Mount | undefined => this.#mounts.find((m) => path.startsWith(m.path));
    const known = cached();
    if (known !== undefined) return Promise.resolve(known);
    const lookup = this.#lookups.then(() => cached() ?? this.#lookupMount(path));
    this.#lookups = lookup.catch(() => undefined);
    return lookup;
  }

  async #lookupMount(path: string): Promise<Mount> {
    const { data } = await this.#session.withToken((t) =>
      this.#client.read(`sys/internal/ui/mounts/${path}`, t, mountAnswer),
    );
    const version = data.options?.version;
    const kv = data.type === 'kv' || data.type === 'generic';
    const mount: Mount = {
      path: data.path.endsWith('/') ? data.path : `${data.path}/`,
      kvVersion: kv ? (version === '2' ? 2 : 1) : undefined,
    };
    this.#mounts.push(mount);
    return mount;
  }

  async #readOne(path: string, version: string | undefined): Promise<Fetched> {
    const mount = await this.#mountOf(path);
    if (mount.kvVersion === 2) return this.#readKv2(mount, path, version);
    if (version !== undefined) throw new ProviderError('CONFIG', `vault ${path}: @version needs a KV v2 mount`);
    const answer = await this.#session.withToken((t) => this.#client.read(path, t, logicalAnswer));
    if (answer.data === null) throw new ProviderError('NOT_FOUND', `vault ${path}: no data`);
    if (answer.lease_id === '')
      return { value: { kind: 'object', value: answer.data }, version: contentVersion(answer.data) };
    const now = this.#deps.now();
    const lease: Lease = {
      id: answer.lease_id,
      durationMs: answer.lease_duration * 1000,
      renewable: answer.renewable,
      renewedAt: now,
      issuedAt: now,
    };
    return { value: { kind: 'object', value: answer.data }, version: answer.lease_id, lease };
  }

  async #readKv2(mount: Mount, path: string, version: string | undefined): Promise<Fetched> {
    const query = version === undefined ? '' : `?version=${version}`;
    const { data } = await this.#session.withToken((t) =>
      this.#client.read(`${mount.path}data/${path.slice(mount.path.length)}${query}`, t, kv2Answer),
    );
    if (data.data === null) throw new ProviderError('NOT_FOUND', `vault ${path}: the version is deleted or destroyed`);
    const current = String(data.metadata.version);
    return { value: { kind: 'object', value: data.data }, version: current, displayVersion: current };
  }
}
