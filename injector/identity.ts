// The pod's own identity, handed to the agent. The ServiceAccount admission plugin and the IRSA / EKS Pod
// Identity webhooks ran before us and mounted tokens into the app containers only, so the agent gets copies
// of those env vars and mounts. The agent never receives a credential value, only where to read one.
import type { Container, EnvVar, VolumeMount } from './pod-shape.ts';
import { trimSlashes } from './mount-path.ts';
import { cloneJson } from './patch.ts';
import type { IdentityWiring } from './providers/declaration.ts';

export const SA_TOKEN_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
export const SA_TOKEN_FILE = `${SA_TOKEN_DIR}/token`;
const SA_TOKEN_DIRS: readonly string[] = [SA_TOKEN_DIR, '/run/secrets/kubernetes.io/serviceaccount'];

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

/**
 * Collects identity env and token mounts, preferring the containers that will get the secrets; `wiring` is what
 * the providers copy (injector/providers/: the IRSA and EKS Pod Identity env and volumes for aws).
 */
export function collectIdentity(containers: readonly Container[], wiring: IdentityWiring): PodIdentity {
  const saMount = containers
    .flatMap((c) => c.volumeMounts ?? [])
    .find((m) => SA_TOKEN_DIRS.includes(trimSlashes(m.mountPath)));
  const source = containers.find((c) => (c.env ?? []).some((e) => wiring.markerEnv.includes(e.name)));
  const env = (source?.env ?? []).filter((e) => wiring.env.includes(e.name));
  const tokenDirs = env
    .filter((e) => wiring.tokenFileEnv.includes(e.name) && typeof e['value'] === 'string')
    .map((e) => dirname(e['value'] as string));
  const providerMounts = (source?.volumeMounts ?? []).filter(
    (m) => wiring.volumes.includes(m.name) || tokenDirs.includes(trimSlashes(m.mountPath)),
  );
  const regionVar = wiring.regionEnv
    .map((n) => env.find((e) => e.name === n)?.['value'])
    .find((v) => typeof v === 'string');
  const mounts = [...(saMount === undefined ? [] : [saMount]), ...providerMounts].map((m) => cloneJson(m));
  return {
    env: env.map((e) => cloneJson(e)),
    mounts,
    serviceAccountToken: saMount !== undefined,
    ...(typeof regionVar === 'string' ? { region: regionVar } : {}),
  };
}
