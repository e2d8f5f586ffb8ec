// The pod's own identity, handed to the agent. The ServiceAccount admission plugin and the IRSA / EKS Pod
// Identity webhooks ran before us and mounted tokens into the app containers only, so the agent gets copies
// of those env vars and mounts. The agent never receives a credential value, only where to read one.
import type { Container, EnvVar, VolumeMount } from './pod-shape.ts';
import { trimSlashes } from './mount-path.ts';
import { cloneJson } from './patch.ts';

export const SA_TOKEN_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
export const SA_TOKEN_FILE = `${SA_TOKEN_DIR}/token`;
const SA_TOKEN_DIRS: readonly string[] = [SA_TOKEN_DIR, '/run/secrets/kubernetes.io/serviceaccount'];

/**
 * Env vars set by the EKS pod identity webhook (IRSA) and the EKS Pod Identity agent, and the service
 * endpoints the app's AWS SDK is pointed at (a VPC or FIPS endpoint, a local emulator): the agent signs in
 * and reads where the app would.
 */
export const IDENTITY_ENV: readonly string[] = [
  'AWS_ROLE_ARN',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  'AWS_STS_REGIONAL_ENDPOINTS',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
  'AWS_ENDPOINT_URL',
  'AWS_ENDPOINT_URL_STS',
  'AWS_ENDPOINT_URL_SECRETS_MANAGER',
];
const MARKER_ENV: readonly string[] = ['AWS_ROLE_ARN', 'AWS_CONTAINER_CREDENTIALS_FULL_URI'];
const TOKEN_FILE_ENV: readonly string[] = ['AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE'];
const IDENTITY_VOLUMES: readonly string[] = ['aws-iam-token', 'eks-pod-identity-token'];

export interface PodIdentity {
  readonly env: readonly EnvVar[];
  readonly mounts: readonly VolumeMount[];
  /** The service-account token mount was found (kube-api-access-*). */
  readonly serviceAccountToken: boolean;
  /** A literal AWS_REGION / AWS_DEFAULT_REGION of the identity source, if any. */
  readonly region?: string;
}

function dirname(path: string): string {
  return path.slice(0, Math.max(path.lastIndexOf('/'), 1));
}

/** Collects identity env and token mounts, preferring the containers that will get the secrets. */
export function collectIdentity(containers: readonly Container[]): PodIdentity {
  const saMount = containers.flatMap((c) => c.volumeMounts ?? []).find((m) => SA_TOKEN_DIRS.includes(trimSlashes(m.mountPath)));
  const source = containers.find((c) => (c.env ?? []).some((e) => MARKER_ENV.includes(e.name)));
  const env = (source?.env ?? []).filter((e) => IDENTITY_ENV.includes(e.name));
  const tokenDirs = env.filter((e) => TOKEN_FILE_ENV.includes(e.name) && typeof e['value'] === 'string').map((e) => dirname(e['value'] as string));
  const awsMounts = (source?.volumeMounts ?? []).filter(
    (m) => IDENTITY_VOLUMES.includes(m.name) || tokenDirs.includes(trimSlashes(m.mountPath)),
  );
  const regionVar = ['AWS_REGION', 'AWS_DEFAULT_REGION'].map((n) => env.find((e) => e.name === n)?.['value']).find((v) => typeof v === 'string');
  const mounts = [...(saMount === undefined ? [] : [saMount]), ...awsMounts].map((m) => cloneJson(m));
  return {
    env: env.map((e) => cloneJson(e)),
    mounts,
    serviceAccountToken: saMount !== undefined,
    ...(typeof regionVar === 'string' ? { region: regionVar } : {}),
  };
}
