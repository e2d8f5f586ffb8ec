// `--sidecar-mode auto`: the agent is a native sidecar, which needs Kubernetes >= 1.29 (SidecarContainers on by
// default). On an older cluster the API server drops the init container's restartPolicy, and every injected pod
// would wait in Init for an agent that never exits; so the webhook reads the cluster version once at start and
// refuses to start below 1.29, saying why. It reads it only when a cluster is configured (in-cluster or a
// kubeconfig): local runs start without delay. A version it cannot read is logged and the webhook starts (the
// chart requires 1.30 anyway). `--sidecar-mode native` skips the check. @kubernetes/client-node is imported
// lazily so nothing else pays for it.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { SA_TOKEN_FILE } from '../injector/identity.ts';
import type { SidecarMode } from './config.ts';

export const NATIVE_SIDECAR_MINOR = 29;

export interface ClusterVersion {
  readonly major: string;
  readonly minor: string;
}

export interface SidecarModeDeps {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly log: Logger;
  /** Reads the version of the configured cluster (default: @kubernetes/client-node VersionApi). */
  readonly readVersion?: () => Promise<ClusterVersion>;
  readonly exists?: (path: string) => boolean;
}

/** True when Kubernetes `major.minor` runs native sidecars. */
export function supportsNativeSidecars(version: ClusterVersion): boolean {
  const major = Number.parseInt(version.major, 10);
  const minor = Number.parseInt(version.minor, 10);
  if (!Number.isFinite(major) || !Number.isFinite(minor)) return true;
  return major > 1 || (major === 1 && minor >= NATIVE_SIDECAR_MINOR);
}

export function clusterConfigured(env: SidecarModeDeps['env'], exists: (path: string) => boolean): boolean {
  if (env['KUBERNETES_SERVICE_HOST'] !== undefined && exists(SA_TOKEN_FILE)) return true;
  const kubeconfig = env['KUBECONFIG'];
  if (kubeconfig !== undefined && kubeconfig !== '') return kubeconfig.split(':').some((p) => p !== '' && exists(p));
  return exists(join(env['HOME'] ?? homedir(), '.kube', 'config'));
}

async function readClusterVersion(): Promise<ClusterVersion> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  const info = await kc.makeApiClient(k8s.VersionApi).getCode();
  return { major: info.major, minor: info.minor };
}

/** Why the webhook must not start (a cluster without native sidecars), or undefined. */
export async function checkNativeSidecars(mode: SidecarMode, deps: SidecarModeDeps): Promise<string | undefined> {
  if (mode === 'native' || !clusterConfigured(deps.env, deps.exists ?? existsSync)) return undefined;
  let version: ClusterVersion;
  try {
    version = await (deps.readVersion ?? readClusterVersion)();
  } catch (err) {
    deps.log.warn(
      { event: 'cluster_version_failed', err: { message: (err as Error).message } },
      'cluster version unknown; starting (native sidecars need Kubernetes 1.29+)',
    );
    return undefined;
  }
  const native = supportsNativeSidecars(version);
  deps.log.info(
    { event: 'cluster_version', major: version.major, minor: version.minor, nativeSidecars: native },
    'cluster version read',
  );
  if (native) return undefined;
  return `Kubernetes ${version.major}.${version.minor} has no native sidecars, which Sidekey's agent needs (Kubernetes 1.${NATIVE_SIDECAR_MINOR}+; the chart requires 1.30): upgrade the cluster`;
}
