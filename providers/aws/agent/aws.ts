// AWS Secrets Manager provider. Credentials come from the SDK's default chain (env keys, IRSA web identity
// through STS AssumeRoleWithWebIdentity, EKS Pod Identity, instance roles), so the agent uses the pod's own
// identity. Cost: unversioned references go through BatchGetSecretValue, 20 distinct secrets per call, so a
// refresh of N secrets is ceil(N/20) calls; versioned references (@AWSPREVIOUS, @<VersionId>) and secrets a
// batch did not answer use GetSecretValue. When the batch call itself is denied or unknown (an IAM policy
// without secretsmanager:BatchGetSecretValue, an endpoint without it), the provider falls back to
// GetSecretValue and tries the batch again after BATCH_RETRY_MS (a denial can be transient: a policy being
// edited). Every HTTP attempt, retries included, is counted.
//
// Every attempt has a deadline (throwOnRequestTimeout: without it the SDK only warns and a black-holed
// endpoint holds the call and its socket until the refresh loop's 2-minute backstop), and an answer larger
// than MAX_ANSWER_BYTES is cut off instead of buffered (the cap of Vault's transport).
//
// Endpoint override (tests, VPC endpoints, LocalStack-like servers): AWS_ENDPOINT_URL_SECRETS_MANAGER or
// AWS_ENDPOINT_URL from the agent's environment. The SDK reads the same variables for STS (IRSA) itself.
// An egress proxy (HTTPS_PROXY / NO_PROXY from the webhook's proxy setting) is used through Node's own proxy
// support in the handler's agents (proxy-env.ts).
import {
  BatchGetSecretValueCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type {
  BatchGetSecretValueCommandOutput,
  GetSecretValueCommandOutput,
  SecretValueEntry,
} from '@aws-sdk/client-secrets-manager';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { SecretReference } from '../../../injector/reference.ts';
import { ProviderError } from '../../../agent/provider.ts';
import { jsonObject } from '../../../agent/render.ts';
import type {
  FetchOutcome,
  ProviderDeps,
  ProviderFactory,
  SecretProvider,
  SecretValue,
} from '../../../agent/provider.ts';
import { batchUnsupported, fromBatchError, fromSdkError } from './aws-errors.ts';
import { answerEach, mapLimit, readDistinct, secretKey, type Outcome } from '../../../agent/providers/concurrency.ts';
import { proxyEnvOf } from '../../../agent/providers/proxy-env.ts';
import { defined } from '../../../injector/defined.ts';

/** BatchGetSecretValue returns at most 20 secrets per call (SecretIdList limit). */
export const BATCH_SIZE = 20;
/** The SDK's standard retry mode (jittered exponential backoff, throttling-aware), bounded to 3 attempts per call. */
const MAX_ATTEMPTS = 3;
const SINGLE_CONCURRENCY = 8;
/** After the batch call was refused, GetSecretValue is used for this long before the batch is tried again. */
export const BATCH_RETRY_MS = 15 * 60_000;
/** Secrets Manager answers hold at most 20 secrets of 64 KiB each; anything far larger is not an answer. */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024;
const CONNECTION_TIMEOUT_MS = 3_000;
const REQUEST_TIMEOUT_MS = 10_000;

/** The fields GetSecretValue and a BatchGetSecretValue entry share. */
type SecretPayload = Pick<SecretValueEntry, 'SecretString' | 'SecretBinary' | 'VersionId'>;

export interface AwsProviderOptions {
  /** A ready client (tests); otherwise one is built from config and env. */
  readonly client?: SecretsManagerClient;
  /** Per-attempt deadline (tests shorten it). */
  readonly requestTimeoutMs?: number;
}

/** A VersionId is a UUID (or a 32-64 character client token); anything else after "@" is a staging label. */
export function isVersionId(version: string): boolean {
  return (
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(version) ||
    (version.length >= 32 && version.length <= 64)
  );
}

function toValue(payload: SecretPayload): SecretValue | undefined {
  if (payload.SecretString !== undefined) {
    const object = jsonObject(payload.SecretString);
    return object === undefined ? { kind: 'text', value: payload.SecretString } : { kind: 'object', value: object };
  }
  if (payload.SecretBinary !== undefined) return { kind: 'binary', value: payload.SecretBinary };
  return undefined;
}

function toOutcome(secretId: string, payload: SecretPayload): Outcome {
  const value = toValue(payload);
  if (value === undefined) {
    return {
      ok: false,
      error: new ProviderError(
        'BAD_RESPONSE',
        `aws ${secretId}: the answer holds neither SecretString nor SecretBinary`,
      ),
    };
  }
  const version =
    payload.VersionId ??
    createHash('sha256')
      .update(payload.SecretString ?? payload.SecretBinary ?? '')
      .digest('hex');
  return { ok: true, fetched: { value, version, ...defined({ displayVersion: payload.VersionId }) } };
}

function createClient(deps: ProviderDeps, requestTimeoutMs: number): SecretsManagerClient {
  const region = deps.config.aws?.region ?? deps.env.AWS_REGION ?? deps.env.AWS_DEFAULT_REGION;
  if (region === undefined) {
    throw new ProviderError(
      'CONFIG',
      'aws: no region (set sidekey.io/aws-region or the webhook default, or AWS_REGION)',
    );
  }
  const endpoint = deps.env.AWS_ENDPOINT_URL_SECRETS_MANAGER ?? deps.env.AWS_ENDPOINT_URL;
  // The handler makes its http(s) agents from these options; the web-identity STS client reuses this handler.
  const proxyEnv = proxyEnvOf(deps.env);
  const agents = proxyEnv === undefined ? {} : { httpsAgent: { proxyEnv }, httpAgent: { proxyEnv } };
  return new SecretsManagerClient({
    region,
    ...(endpoint === undefined || endpoint === '' ? {} : { endpoint }),
    retryMode: 'standard',
    maxAttempts: MAX_ATTEMPTS,
    requestHandler: {
      connectionTimeout: CONNECTION_TIMEOUT_MS,
      requestTimeout: requestTimeoutMs,
      throwOnRequestTimeout: true,
      ...agents,
    },
  });
}

/** Destroys an answer body that grows past MAX_ANSWER_BYTES (declared or received), so it is never buffered whole. */
function capAnswer(body: Readable, declared: string | undefined): void {
  const tooLarge = (): ProviderError =>
    new ProviderError('BAD_RESPONSE', `aws: the answer exceeds ${MAX_ANSWER_BYTES} bytes`);
  if (declared !== undefined && Number(declared) > MAX_ANSWER_BYTES) {
    body.destroy(tooLarge());
    return;
  }
  let size = 0;
  body.on('data', (chunk: Uint8Array) => {
    size += chunk.byteLength;
    if (size > MAX_ANSWER_BYTES) body.destroy(tooLarge());
  });
}

/**
 * Finds the answer to a requested id among batch entries: by name, full ARN, or partial ARN (without the 6-char
 * suffix).
 */
function matchEntry(id: string, entries: readonly SecretValueEntry[]): SecretValueEntry | undefined {
  return entries.find(
    (e) =>
      e.Name === id ||
      e.ARN === id ||
      (e.ARN !== undefined && e.ARN.length === id.length + 7 && e.ARN.startsWith(`${id}-`)),
  );
}

/** Counts every HTTP attempt (retries included) and caps answer bodies before the SDK reads them. */
function instrument(client: SecretsManagerClient, countCall: ProviderDeps['countCall']): void {
  client.middlewareStack.add(
    (next, context) => (args) => {
      countCall('aws', (context.commandName ?? 'Unknown').replace(/Command$/, ''));
      return next(args);
    },
    { step: 'deserialize', name: 'sidekeyCountCalls' },
  );
  // Innermost (deserialize, low priority): sees the raw answer before the SDK reads its body.
  client.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      const response = result.response as { body?: unknown; headers?: Record<string, string> };
      const body = response.body;
      if (typeof body === 'object' && body !== null && 'on' in body && 'destroy' in body)
        capAnswer(body as Readable, response.headers?.['content-length']);
      return result;
    },
    { step: 'deserialize', priority: 'low', name: 'sidekeyCapAnswer' },
  );
}

/** The outcomes a BatchGetSecretValue answer holds: a value or a per-secret error; ids it left out are absent. */
function batchOutcomes(ids: readonly string[], answer: BatchGetSecretValueCommandOutput): Map<string, Outcome> {
  const results = new Map<string, Outcome>();
  for (const id of ids) {
    const entry = matchEntry(id, answer.SecretValues ?? []);
    const failed = answer.Errors?.find((e) => e.SecretId === id);
    if (entry !== undefined) results.set(id, toOutcome(id, entry));
    else if (failed !== undefined)
      results.set(id, { ok: false, error: fromBatchError(id, failed.ErrorCode, failed.Message) });
  }
  return results;
}

/** One GetSecretValue, by VersionId or staging label when `version` is given. */
async function getSecret(
  client: SecretsManagerClient,
  signal: AbortSignal,
  secretId: string,
  version: string | undefined,
): Promise<Outcome> {
  const what = version === undefined ? secretId : `${secretId}@${version}`;
  try {
    const selector =
      version === undefined ? {} : isVersionId(version) ? { VersionId: version } : { VersionStage: version };
    const answer: GetSecretValueCommandOutput = await client.send(
      new GetSecretValueCommand({ SecretId: secretId, ...selector }),
      { abortSignal: signal },
    );
    return toOutcome(what, answer);
  } catch (error) {
    return { ok: false, error: fromSdkError(error, what) };
  }
}

/**
 * One batch call: what it answered (every id, when the call failed), or nothing while batching is off. A refused
 * batch (an IAM policy without BatchGetSecretValue) turns batching off for BATCH_RETRY_MS, then it is tried again.
 */
function batchReader(
  client: SecretsManagerClient,
  deps: ProviderDeps,
  signal: AbortSignal,
): (ids: readonly string[]) => Promise<Map<string, Outcome> | undefined> {
  /** While set, the batch call is not tried (it was refused); it is tried again once this time has passed. */
  let batchOffUntil: number | undefined;
  return async (ids) => {
    if (batchOffUntil !== undefined && deps.now() < batchOffUntil) return undefined;
    try {
      const answer = await client.send(new BatchGetSecretValueCommand({ SecretIdList: [...ids] }), {
        abortSignal: signal,
      });
      if (batchOffUntil !== undefined) deps.log.info('BatchGetSecretValue works again; batching resumed');
      batchOffUntil = undefined;
      return batchOutcomes(ids, answer);
    } catch (error) {
      if (!batchUnsupported(error)) {
        const mapped = fromSdkError(error, `batch of ${ids.length} secrets`);
        return new Map(ids.map((id) => [id, { ok: false, error: mapped }]));
      }
      if (batchOffUntil === undefined) {
        deps.log.warn(
          { error: fromSdkError(error, 'BatchGetSecretValue').message, retryInMs: BATCH_RETRY_MS },
          'BatchGetSecretValue unavailable; using GetSecretValue per secret (one call per secret) until the batch is tried again',
        );
      }
      batchOffUntil = deps.now() + BATCH_RETRY_MS;
      return undefined;
    }
  };
}

export function createAwsProvider(deps: ProviderDeps, options: AwsProviderOptions = {}): SecretProvider {
  const client = options.client ?? createClient(deps, options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS);
  instrument(client, deps.countCall);
  // close() aborts calls in flight and their retries: a hung endpoint cannot hold the agent's exit.
  const closing = new AbortController();
  const tryBatch = batchReader(client, deps, closing.signal);
  const getOne = (secretId: string, version: string | undefined): Promise<Outcome> =>
    getSecret(client, closing.signal, secretId, version);

  const getBatch = async (ids: readonly string[]): Promise<Map<string, Outcome>> => {
    const results = (await tryBatch(ids)) ?? new Map<string, Outcome>();
    // Secrets the batch did not answer (or all of them, when batching is unavailable): one call each.
    const missing = ids.filter((id) => !results.has(id));
    const singles = await mapLimit(missing, SINGLE_CONCURRENCY, (id) => getOne(id, undefined));
    missing.forEach((id, i) => results.set(id, singles[i] as Outcome));
    return results;
  };

  return {
    name: 'aws',
    async fetchMany(refs: readonly SecretReference[]): Promise<readonly FetchOutcome[]> {
      const plainIds = [...new Set(refs.filter((r) => r.version === undefined).map((r) => r.path))];
      const chunks: string[][] = [];
      for (let i = 0; i < plainIds.length; i += BATCH_SIZE) chunks.push(plainIds.slice(i, i + BATCH_SIZE));
      const [batched, answers] = await Promise.all([
        Promise.all(chunks.map(getBatch)),
        readDistinct(
          refs.filter((r) => r.version !== undefined),
          SINGLE_CONCURRENCY,
          (r) => getOne(r.path, r.version),
        ),
      ]);
      for (const map of batched) for (const [id, outcome] of map) answers.set(secretKey({ path: id }), outcome);
      return answerEach('aws', refs, answers);
    },
    close(): Promise<void> {
      closing.abort();
      client.destroy();
      return Promise.resolve();
    },
  };
}

export const createProvider: ProviderFactory = (deps) => createAwsProvider(deps);
