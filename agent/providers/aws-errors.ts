// Maps AWS SDK v3 errors (and BatchGetSecretValue's per-secret ErrorCode strings) to stable ProviderError codes.
// Messages name the secret id and the AWS error name; AWS error messages never carry secret values.
import { ProviderError } from '../provider.ts';
import type { ProviderErrorCode } from '../provider.ts';
import { tlsVerifyFailure } from './tls-errors.ts';

const TRUST_FIX = 'a TLS-inspecting proxy needs its CA in the agent image\'s trust store, or the endpoint (AWS_ENDPOINT_URL*) a public certificate';

const THROTTLE = new Set(['ThrottlingException', 'Throttling', 'TooManyRequestsException', 'RequestLimitExceeded', 'LimitExceededException']);
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
const BAD_REQUEST = new Set(['InvalidParameterException', 'ValidationException', 'InvalidNextTokenException', 'SerializationException']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET']);
const NETWORK_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'NetworkingError', 'AbortError']);

interface SdkErrorShape {
  readonly name?: unknown;
  readonly code?: unknown;
  readonly message?: unknown;
  readonly $fault?: unknown;
  readonly $metadata?: { readonly httpStatusCode?: unknown };
}

function classify(name: string, status: number | undefined, message: string): [ProviderErrorCode, boolean] {
  if (THROTTLE.has(name) || status === 429) return ['THROTTLED', true];
  if (name === 'ResourceNotFoundException') return ['NOT_FOUND', false];
  if (DENIED.has(name) || status === 403) return ['PERMISSION_DENIED', false];
  if (AUTH.has(name)) return ['AUTH_FAILED', true];
  // A secret scheduled for deletion answers InvalidRequestException: to the pod it is gone.
  if (name === 'InvalidRequestException') return /delet/i.test(message) ? ['NOT_FOUND', false] : ['CONFIG', false];
  if (BAD_REQUEST.has(name)) return ['CONFIG', false];
  if (name === 'InternalServiceError' || name === 'InternalFailure' || name === 'ServiceUnavailable') return ['UNAVAILABLE', true];
  if (status !== undefined && status >= 500) return ['UNAVAILABLE', true];
  if (NETWORK_NAMES.has(name) || NETWORK_CODES.has(name)) return ['UNAVAILABLE', true];
  return ['BAD_RESPONSE', true];
}

/** A ProviderError for a failed SDK call about `what` (a secret id or "batch of N secrets"). */
export function fromSdkError(error: unknown, what: string): ProviderError {
  if (error instanceof ProviderError) return error;
  const shape: SdkErrorShape = typeof error === 'object' && error !== null ? (error) : {};
  const code = typeof shape.code === 'string' ? shape.code : undefined;
  const tls = code === undefined ? undefined : tlsVerifyFailure(code, TRUST_FIX);
  if (tls !== undefined) return new ProviderError('TLS_VERIFY_FAILED', `aws ${what}: ${tls}`, true, { cause: error });
  const name = code !== undefined && NETWORK_CODES.has(code) ? code : typeof shape.name === 'string' ? shape.name : 'Error';
  const status = typeof shape.$metadata?.httpStatusCode === 'number' ? shape.$metadata.httpStatusCode : undefined;
  const message = typeof shape.message === 'string' ? shape.message : '';
  // No HTTP status at all means the request never got an answer: a network problem.
  const [mapped, retryable] = status === undefined && name === 'Error' ? (['UNAVAILABLE', true] as const) : classify(name, status, message);
  const detail = message === '' ? name : `${name}: ${message.slice(0, 200)}`;
  return new ProviderError(mapped, `aws ${what}: ${detail}`, retryable, { cause: error });
}

/** A ProviderError for one entry of BatchGetSecretValue's Errors list. */
export function fromBatchError(secretId: string, errorCode: string | undefined, message: string | undefined): ProviderError {
  const name = errorCode ?? 'Error';
  const [code, retryable] = classify(name, undefined, message ?? '');
  return new ProviderError(code, `aws ${secretId}: ${name}${message === undefined ? '' : `: ${message.slice(0, 200)}`}`, retryable);
}

/** True when the batch call itself is unusable here (IAM lacks secretsmanager:BatchGetSecretValue, or an endpoint without it). */
export function batchUnsupported(error: unknown): boolean {
  const shape: SdkErrorShape = typeof error === 'object' && error !== null ? (error) : {};
  const name = typeof shape.name === 'string' ? shape.name : '';
  const status = shape.$metadata?.httpStatusCode;
  return DENIED.has(name) || name === 'UnknownOperationException' || name === 'InvalidAction' || name === 'NotImplemented' || status === 404 || status === 501;
}
