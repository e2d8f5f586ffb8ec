// The /status document (agent/status-schema.ts) from the refresh loop's state: a read-only snapshot, built on
// request. It names files and references and reports times, counts and error codes; it reads no value or
// rendered byte, no error message (Source.lastError carries one) and no lease id.
import type { AgentConfig } from '../injector/agent-config.ts';
import { formatReference } from '../injector/reference.ts';
import type { ReloadStats } from './reload.ts';
import type { WriteFailure } from './refresh-loop.ts';
import { staleLimit, type Source } from './sources.ts';
import {
  AGENT_STATUS_VERSION,
  MAX_STATUS_BYTES,
  type AgentStatus,
  type FileStatus,
  type Freshness,
} from './status-schema.ts';
import { defined } from '../injector/defined.ts';

export interface StatusInput {
  readonly config: Readonly<AgentConfig>;
  readonly sources: readonly Source[];
  readonly writeError: WriteFailure | undefined;
  readonly reloads: ReloadStats;
  /** Epoch ms on the agent's clock. */
  readonly startedAt: number;
  readonly now: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();

function fileStatus(input: StatusInput, source: Source, file: Source['files'][number]): FileStatus {
  const staleAfterMs = staleLimit(input.config, source);
  const stale = file.goodAt === undefined || input.now - file.goodAt > staleAfterMs;
  const failing = source.lastErrorCode !== undefined || input.writeError !== undefined;
  const { lease } = source;
  return {
    name: file.spec.name,
    reference: formatReference(file.spec.ref),
    state: failing ? 'failing' : stale ? 'stale' : 'fresh',
    ...defined({ version: source.displayVersion }),
    ...(lease === undefined
      ? {}
      : { lease: { expiresAt: iso(lease.renewedAt + lease.durationMs), renewable: lease.renewable } }),
    ...(source.expiresAt === undefined ? {} : { certificate: { expiresAt: iso(source.expiresAt) } }),
    ...defined({ lastGoodAt: file.goodAt === undefined ? undefined : iso(file.goodAt) }),
    nextRefreshAt: iso(source.dueAt),
    next: source.next,
    staleAfterMs: Math.max(1, Math.round(staleAfterMs)),
    stale,
    ...(source.lastErrorCode === undefined
      ? {}
      : {
          lastError: {
            code: source.lastErrorCode,
            at: iso(source.lastErrorAt ?? input.now),
            failures: source.failures,
          },
        }),
  };
}

const WORST: readonly Freshness[] = ['failing', 'stale', 'fresh'];

/** The whole document, every file included. */
export function agentStatus(input: StatusInput): AgentStatus {
  const files = input.sources.flatMap((s) => s.files.map((f) => fileStatus(input, s, f)));
  const counts = { fresh: 0, stale: 0, failing: 0 };
  for (const f of files) counts[f.state] += 1;
  const { writeError } = input;
  return {
    version: AGENT_STATUS_VERSION,
    mode: input.config.mode,
    startedAt: iso(input.startedAt),
    now: iso(input.now),
    state: WORST.find((state) => counts[state] > 0) ?? 'fresh',
    counts,
    files: files.sort((a, b) => WORST.indexOf(a.state) - WORST.indexOf(b.state)),
    omittedFiles: 0,
    ...(writeError === undefined
      ? {}
      : { writeError: { code: writeError.code, at: iso(writeError.at), failures: writeError.failures } }),
    reloads: {
      kind: input.config.reload.kind,
      ok: input.reloads.ok,
      failed: input.reloads.failed,
      ...defined({ last: lastReload(input.reloads) }),
    },
  };
}

function lastReload(stats: ReloadStats): AgentStatus['reloads']['last'] {
  return stats.last === undefined ? undefined : { at: iso(stats.last.at), result: stats.last.result };
}

/**
 * The JSON body, at most `maxBytes`: file entries are left out from the end (failing files are listed first,
 * so fresh ones are dropped first) and counted in `omittedFiles`. 500 files of long references could reach
 * ~0.6 MiB; the bound keeps what the ops port's 64 connections can hold to a few MiB.
 */
export function statusBody(status: AgentStatus, maxBytes: number = MAX_STATUS_BYTES): string {
  const whole = JSON.stringify(status);
  if (Buffer.byteLength(whole) <= maxBytes) return whole;
  const frame = Buffer.byteLength(JSON.stringify({ ...status, files: [], omittedFiles: status.files.length }));
  let size = frame;
  let kept = 0;
  for (const file of status.files) {
    size += Buffer.byteLength(JSON.stringify(file)) + 1;
    if (size > maxBytes) break;
    kept += 1;
  }
  return JSON.stringify({ ...status, files: status.files.slice(0, kept), omittedFiles: status.files.length - kept });
}
