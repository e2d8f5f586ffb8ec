// The objects the injector adds to a pod, built mechanically from a plan: agent containers (Pod Security
// "restricted"), the memory volume and the read-only mounts for the app containers.
import { LOG_LEVEL_ENV } from './agent-config.ts';
import type { AgentConfig } from './agent-config.ts';
import { AGENT_SECRETS_DIR, CONFIG_ENV, SECRETS_VOLUME } from './constants.ts';
import type { InjectionPlan } from './plan.ts';
import type { JsonObject } from './patch.ts';
import { proxyEnv } from './proxy.ts';
import type { InjectionSettings } from './settings.ts';
import { defined } from './defined.ts';

export const AGENT_PORT_NAME = 'sidekey-http';

function image(settings: InjectionSettings): string {
  const { repository, tag } = settings.image;
  return tag.startsWith('sha256:') ? `${repository}@${tag}` : `${repository}:${tag}`;
}

function securityContext(plan: InjectionPlan): JsonObject {
  const { runAsUser, runAsGroup } = plan.ownership;
  return {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    privileged: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    runAsUser,
    ...defined({ runAsGroup }),
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

function env(plan: InjectionPlan, configText: string, settings: InjectionSettings): JsonObject[] {
  const fieldRef = (name: string, fieldPath: string): JsonObject => ({ name, valueFrom: { fieldRef: { fieldPath } } });
  return [
    { name: CONFIG_ENV, value: configText },
    fieldRef('POD_NAME', 'metadata.name'),
    fieldRef('POD_NAMESPACE', 'metadata.namespace'),
    ...plan.backends.env,
    ...(plan.logLevel === undefined ? [] : [{ name: LOG_LEVEL_ENV, value: plan.logLevel }]),
    ...proxyEnv(settings.proxy),
    ...plan.identity.env,
  ];
}

function mounts(plan: InjectionPlan): JsonObject[] {
  return [{ name: SECRETS_VOLUME, mountPath: AGENT_SECRETS_DIR }, ...plan.backends.mounts, ...plan.identity.mounts];
}

function probes(port: number): JsonObject {
  const get = (path: string): JsonObject => ({ httpGet: { path, port, scheme: 'HTTP' } });
  return {
    startupProbe: { ...get('/startup'), periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 300 },
    readinessProbe: { ...get('/readyz'), periodSeconds: 10, timeoutSeconds: 1, failureThreshold: 3 },
    livenessProbe: { ...get('/healthz'), periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
  };
}

export interface AgentContainerInput {
  readonly name: string;
  readonly config: AgentConfig;
  /** JSON.stringify(config), the value of SIDEKEY_CONFIG. */
  readonly configText: string;
  readonly plan: InjectionPlan;
  readonly settings: InjectionSettings;
}

/**
 * Role run is a native sidecar (an init container with restartPolicy Always and probes); role init writes once and
 * exits.
 */
export function agentContainer(input: AgentContainerInput): JsonObject {
  const { plan, config } = input;
  const running = config.role === 'run';
  return {
    name: input.name,
    image: image(input.settings),
    imagePullPolicy: input.settings.image.pullPolicy,
    ...(running ? { restartPolicy: 'Always' } : {}),
    env: env(plan, input.configText, input.settings),
    ...(running ? { ports: [{ name: AGENT_PORT_NAME, containerPort: config.port, protocol: 'TCP' }] } : {}),
    resources: {
      requests: { cpu: plan.resources.cpu, memory: plan.resources.memory },
      limits: { memory: plan.resources.memoryLimit },
    },
    securityContext: securityContext(plan),
    volumeMounts: mounts(plan),
    ...(running ? probes(config.port) : {}),
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

export function agentVolumes(plan: InjectionPlan): JsonObject[] {
  return [
    { name: SECRETS_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: plan.tmpfsSize } },
    ...plan.backends.volumes,
  ];
}

/** The read-only mount app containers get. */
export function appMount(plan: InjectionPlan): JsonObject {
  return { name: SECRETS_VOLUME, mountPath: plan.mountPath, readOnly: true };
}
