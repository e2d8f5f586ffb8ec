// Maps AWS SDK v3 errors (and BatchGetSecretValue's per-secret ErrorCode strings) to stable ProviderError codes.
// Messages name the secret id and the AWS error name; AWS error messages never carry secret values.
import { ProviderError } from '../../../agent/provider.ts';
import type { ProviderErrorCode } from '../../../agent/provider.ts';
import { tlsVerifyFailure } from '../../../agent/providers/tls-errors.ts';

const TRUST_FIX =
  "a TLS-inspecting proxy needs its CA in the agent image's trust store, or the endpoint (AWS_ENDPOINT_URL*) a public certificate";

const THROTTLE = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'LimitExceededException',
]);
const DENIED = new Set(['AccessDeniedException', 'AccessDenied', 'DecryptionFailure', 'KMSAccessDeniedException']);
const AUTH = new Set([
  'CredentialsProviderError',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
  'ExpiredToken',
  'InvalidIdentityToken',
  'InvalidClientTokenId',
  'IDPCommunicationError',
]);
const BAD_REQUEST = new Set([
  'InvalidParameterException',
  'ValidationException',
  'InvalidNextTokenException',
  'SerializationException',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
]);
const NETWORK_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'NetworkingError',
  'AbortError',
]);
const DOWN = new Set([
  'InternalServiceError',
  'InternalFailure',
  'ServiceUnavailable',
  ...NETWORK_NAMES,
  ...NETWORK_CODES,
]);

interface SdkErrorShape {
  readonly name?: unknown;
  readonly code?: unknown;
  readonly message?: unknown;
  readonly $fault?: unknown;
  readonly $metadata?: { readonly httpStatusCode?: unknown };
}

interface SdkErrorFields {
  /** The Node error code of a network failure (ECONNREFUSED, a TLS verification code). */
  readonly code: string | undefined;
  /** The AWS error name, or the network code, or 'Error'. */
  readonly name: string;
  readonly status: number | undefined;
  readonly message: string;
}

function fieldsOf(error: unknown): SdkErrorFields {
  const shape: SdkErrorShape = typeof error === 'object' && error !== null ? error : {};
  const code = typeof shape.code === 'string' ? shape.code : undefined;
  return {
    code,
    name: code !== undefined && NETWORK_CODES.has(code) ? code : typeof shape.name === 'string' ? shape.name : 'Error',
    status: typeof shape.$metadata?.httpStatusCode === 'number' ? shape.$metadata.httpStatusCode : undefined,
    message: typeof shape.message === 'string' ? shape.message : '',
  };
}

function classify(name: string, status: number | undefined, message: string): ProviderErrorCode {
  if (THROTTLE.has(name) || status === 429) return 'THROTTLED';
  if (name === 'ResourceNotFoundException') return 'NOT_FOUND';
  if (DENIED.has(name) || status === 403) return 'PERMISSION_DENIED';
  if (AUTH.has(name)) return 'AUTH_FAILED';
  // A secret scheduled for deletion answers InvalidRequestException: to the pod it is gone.
  if (name === 'InvalidRequestException') return /delet/i.test(message) ? 'NOT_FOUND' : 'CONFIG';
  if (BAD_REQUEST.has(name)) return 'CONFIG';
  if (DOWN.has(name) || (status !== undefined && status >= 500)) return 'UNAVAILABLE';
  return 'BAD_RESPONSE';
}

/** A ProviderError for a failed SDK call about `what` (a secret id or "batch of N secrets"). */
export function fromSdkError(error: unknown, what: string): ProviderError {
  if (error instanceof ProviderError) return error;
  const { code, name, status, message } = fieldsOf(error);
  const tls = code === undefined ? undefined : tlsVerifyFailure(code, TRUST_FIX);
  if (tls !== undefined) return new ProviderError('TLS_VERIFY_FAILED', `aws ${what}: ${tls}`, { cause: error });
  // No HTTP status at all means the request never got an answer: a network problem.
  const mapped = status === undefined && name === 'Error' ? 'UNAVAILABLE' : classify(name, status, message);
  const detail = message === '' ? name : `${name}: ${message.slice(0, 200)}`;
  return new ProviderError(mapped, `aws ${what}: ${detail}`, { cause: error });
}

/** A ProviderError for one entry of BatchGetSecretValue's Errors list. */
export function fromBatchError(
  secretId: string,
  errorCode: string | undefined,
  message: string | undefined,
): ProviderError {
  const name = errorCode ?? 'Error';
  return new ProviderError(
    classify(name, undefined, message ?? ''),
    `aws ${secretId}: ${name}${message === undefined ? '' : `: ${message.slice(0, 200)}`}`,
  );
}

/**
 * True when the batch call itself is unusable here (IAM lacks secretsmanager:BatchGetSecretValue, or an endpoint
 * without it).
 */
export function batchUnsupported(error: unknown): boolean {
  const { name, status } = fieldsOf(error);
  return (
    DENIED.has(name) ||
    name === 'UnknownOperationException' ||
    name === 'InvalidAction' ||
    name === 'NotImplemented' ||
    status === 404 ||
    status === 501
  );
}
