// `--sidecar-mode auto`: native sidecars need Kubernetes >= 1.29 (SidecarContainers on by default). The cluster
// version is read once at start, only when a cluster is configured (in-cluster or a kubeconfig); without one
// (local runs, `sidekey render`) the answer is native, without delay or error. @kubernetes/client-node is
// imported lazily so nothing else pays for it.
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

/** Resolves auto|native|classic to "use native sidecars". */
export async function resolveNativeSidecars(mode: SidecarMode, deps: SidecarModeDeps): Promise<boolean> {
  if (mode !== 'auto') return mode === 'native';
  if (!clusterConfigured(deps.env, deps.exists ?? existsSync)) return true;
  try {
    const version = await (deps.readVersion ?? readClusterVersion)();
    const native = supportsNativeSidecars(version);
    deps.log.info({ event: 'cluster_version', major: version.major, minor: version.minor, nativeSidecars: native }, 'sidecar mode resolved');
    return native;
  } catch (err) {
    deps.log.warn({ event: 'cluster_version_failed', err: { message: (err as Error).message } }, 'cluster version unknown; using native sidecars (set --sidecar-mode to choose)');
    return true;
  }
}
