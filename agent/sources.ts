// The refresh loop's model: the config's files grouped into sources, one per distinct backend secret
// (provider + path + parameters + version). Two files reading different fields of one secret share one fetch,
// which matters beyond cost: both fields of a Vault dynamic credential must come from the same lease, and a
// certificate, its private key and its CA from the same PKI issue.
import type { AgentConfig, FileSpec } from '../injector/agent-config.ts';
import type { Provider, SecretReference } from '../injector/reference.ts';
import type { Lease } from './provider.ts';
import { effectiveInterval } from './timing.ts';
import { defined } from '../injector/defined.ts';

export interface Source {
  readonly key: string;
  readonly provider: Provider;
  /** The reference without `#field`: the provider returns the whole secret and the renderer selects. */
  readonly ref: SecretReference;
  readonly files: readonly FileState[];
  /** The shortest refresh interval of its files, floored. */
  readonly intervalMs: number;
  version?: string;
  /** The backend's own version when it has one that is safe to show (Fetched.displayVersion), for /status. */
  displayVersion?: string;
  /** Epoch ms of the last good fetch or lease renewal. */
  fetchedAt?: number;
  lease?: Lease;
  /** The lease duration as first issued (the renewal grace is a share of it). */
  issuedDurationMs?: number;
  /** Epoch ms when the fetched value stops being valid (a certificate's notAfter): it is fetched anew before. */
  expiresAt?: number;
  /** Consecutive failures, for backoff. */
  failures: number;
  lastError?: string;
  /** The code of lastError and when it happened (/status shows these, never the message). */
  lastErrorCode?: string;
  lastErrorAt?: number;
  /** Epoch ms when the next action is due. */
  dueAt: number;
  next: 'fetch' | 'renew';
}

export interface FileState {
  readonly spec: FileSpec;
  /** The latest rendered content. */
  bytes?: Uint8Array | undefined;
  /** The content on disk (what the last successful write put there). */
  written?: Uint8Array | undefined;
  /** Epoch ms of the fetch behind the content on disk (staleness). */
  goodAt?: number;
}

/**
 * Data older than this (ms since its last good fetch) is stale: the configured threshold, else a certificate until
 * it expires, else three refresh periods (the lease duration for a leased secret).
 */
export function staleLimit(config: Readonly<AgentConfig>, source: Source): number {
  if (config.staleAfterMs !== undefined) return config.staleAfterMs;
  if (source.expiresAt !== undefined && source.fetchedAt !== undefined) return source.expiresAt - source.fetchedAt;
  return 3 * (source.lease?.durationMs ?? source.intervalMs);
}

export function sourceKey(ref: {
  readonly provider: Provider;
  readonly path: string;
  readonly query?: string | undefined;
  readonly version?: string | undefined;
}): string {
  return `${ref.provider}:${ref.path}${ref.query === undefined ? '' : `?${ref.query}`}@${ref.version ?? ''}`;
}

export function buildSources(config: Readonly<AgentConfig>, now: number): Source[] {
  const groups = new Map<string, { ref: SecretReference; files: FileState[] }>();
  for (const spec of config.files) {
    const key = sourceKey(spec.ref);
    const group = groups.get(key) ?? {
      ref: {
        provider: spec.ref.provider,
        path: spec.ref.path,
        ...defined({ query: spec.ref.query }),
        ...defined({ version: spec.ref.version }),
      },
      files: [],
    };
    group.files.push({ spec });
    groups.set(key, group);
  }
  return [...groups].map(([key, { ref, files }]) => ({
    key,
    provider: ref.provider,
    ref,
    files,
    intervalMs: Math.min(...files.map((f) => effectiveInterval(f.spec.refreshMs))),
    failures: 0,
    dueAt: now,
    next: 'fetch',
  }));
}
