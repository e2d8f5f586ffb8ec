// The agent's /status document: what `sidekey status` reads through the API server's pod proxy. One zod schema,
// versioned: the agent builds its answer to these types and the CLI validates what it reads with it, so a
// mismatch between an agent and a CLI of another release fails loudly instead of printing wrong states.
// It carries references, times, counts and stable error codes: never a value, a rendered byte, an error message
// (a backend's message may quote what it was sent), a content hash (a fingerprint of a value) or a lease id.
// Written with zod/mini like the agent configuration (the agent loads this module for its types and constants).
import * as z from 'zod/mini';
import { FILE_NAME, MAX_FILES, MODES } from '../injector/agent-config.ts';

export const AGENT_STATUS_VERSION = 1;

/** The body is cut to this many bytes by leaving out file entries (`omittedFiles`; the counts keep them all). */
export const MAX_STATUS_BYTES = 65_536;

/**
 * `failing`: the last fetch, renewal or write failed (the files on disk are the last good ones); `stale`: no
 * failure, but the data is older than its threshold or not written yet (what fails /readyz); `fresh`: neither.
 */
export const FRESHNESS = ['fresh', 'stale', 'failing'] as const;
export type Freshness = (typeof FRESHNESS)[number];

/** A stable error code (ProviderError, RenderError, WriterError code, or a write's errno): never a message. */
const errorCode = z.string().check(z.regex(/^[A-Z][A-Z0-9_]{0,39}$/));
const instant = z.iso.datetime();
const count = z.int().check(z.gte(0));

const failureSchema = z.strictObject({
  code: errorCode,
  at: instant,
  /** Consecutive failures (the backoff's attempt number). */
  failures: count,
});

const fileStatusSchema = z.strictObject({
  name: z.string().check(z.regex(FILE_NAME)),
  /** `provider:path[?parameters][#field][@version]`, as annotated. */
  reference: z.string().check(z.minLength(3), z.maxLength(4096)),
  state: z.enum(FRESHNESS),
  /**
   * The backend's version when it names one (AWS VersionId, KV v2 version, a certificate's serial number); absent
   * for content hashes and leases.
   */
  version: z.optional(z.string().check(z.minLength(1), z.maxLength(64))),
  /** A dynamic secret's lease: when it ends unless renewed. Its id is left out (see agent/README.md). */
  lease: z.optional(z.strictObject({ expiresAt: instant, renewable: z.boolean() })),
  /** A PKI certificate's notAfter (it is issued again at about 2/3 of its lifetime). */
  certificate: z.optional(z.strictObject({ expiresAt: instant })),
  /** The fetch (or lease renewal) behind the data on disk; absent before the first write. */
  lastGoodAt: z.optional(instant),
  /** When the agent fetches (or renews) next. */
  nextRefreshAt: instant,
  next: z.enum(['fetch', 'renew']),
  /** Older than this (ms since lastGoodAt) counts as stale. */
  staleAfterMs: z.int().check(z.positive()),
  stale: z.boolean(),
  lastError: z.optional(failureSchema),
});
export type FileStatus = z.infer<typeof fileStatusSchema>;

const reloadStatusSchema = z.strictObject({
  kind: z.enum(['none', 'signal', 'http']),
  ok: count,
  failed: count,
  last: z.optional(z.strictObject({ at: instant, result: z.enum(['ok', 'failed']) })),
});
export type ReloadStatus = z.infer<typeof reloadStatusSchema>;

export const agentStatusSchema = z.strictObject({
  version: z.literal(AGENT_STATUS_VERSION),
  mode: z.enum(MODES),
  startedAt: instant,
  /** The agent's clock when it answered: ages are counted from it, not from the reader's clock. */
  now: instant,
  state: z.enum(FRESHNESS),
  counts: z.strictObject({ fresh: count, stale: count, failing: count }),
  files: z.array(fileStatusSchema).check(z.maxLength(MAX_FILES)),
  /** File entries left out to keep the body within MAX_STATUS_BYTES. */
  omittedFiles: count,
  /** The last write of the file set failed (cleared by the next that lands). */
  writeError: z.optional(failureSchema),
  reloads: reloadStatusSchema,
});
export type AgentStatus = z.infer<typeof agentStatusSchema>;

/** Parses a /status body; the error names the fields that do not match, never their values. */
export function parseAgentStatus(
  text: string,
): { readonly ok: true; readonly value: AgentStatus } | { readonly ok: false; readonly error: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, error: 'the status is not JSON' };
  }
  const version = (raw as { version?: unknown } | null)?.version;
  if (version !== AGENT_STATUS_VERSION)
    return { ok: false, error: `status version ${String(version)}, this CLI reads ${AGENT_STATUS_VERSION}` };
  const parsed = agentStatusSchema.safeParse(raw);
  if (parsed.success) return { ok: true, value: parsed.data };
  const fields = parsed.error.issues.map((i) => i.path.join('.') || '(root)');
  return { ok: false, error: `the status does not match its schema at ${[...new Set(fields)].slice(0, 5).join(', ')}` };
}
