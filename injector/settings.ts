// The injection settings: cluster-wide defaults an operator gives the webhook (and `sidekey render`), which
// annotations may override per pod. Plain JSON-able zod schema with a description on every field: the
// webhook's configuration schema embeds it and the Helm chart's values.schema.json is generated from it.
import { z } from 'zod';
import { DEFAULT_MOUNT_PATH, REFRESH_FLOOR_MS } from './constants.ts';
import { formatDuration, parseDuration } from './duration.ts';
import { HTTP_URL_PATTERN, vaultAddrProblem } from './http-url.ts';
import { AWS_REGION, MODES, VAULT_AUTH_PATH } from './agent-config.ts';

export { VAULT_AUTH_PATH };

/** Kubernetes resource quantity, e.g. `10m`, `0.5`, `48Mi`, `1G`. */
export const QUANTITY = /^\d+(\.\d+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$/;
export const VAULT_ROLE = /^[A-Za-z0-9_.@-]{1,128}$/;
export const VAULT_NAMESPACE = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*\/?$/;
/** Annotation values for `vault-auth` (the agent also knows `token`, which a pod cannot be given by annotation). */
export const POD_VAULT_AUTH = ['kubernetes', 'jwt', 'approle'] as const;

/**
 * A Go-style duration of at least 10 s, as a pattern (RE2, no lookahead) the chart's values.schema.json can
 * carry: an hour or minute term with a non-zero value, or a seconds term of two digits or more.
 */
const TERM = '[0-9]+(\\.[0-9]+)?(ms|s|m|h)';
export const DURATION_FROM_10S = new RegExp(`^(${TERM})*([1-9][0-9]*(\\.[0-9]+)?(h|m)|[1-9][0-9]+(\\.[0-9]+)?s)(${TERM})*$`);

const duration = (what: string): z.ZodString =>
  z.string().refine((s) => parseDuration(s) !== undefined, { error: 'must be a Go-style duration such as 90s or 1h30m' }).describe(what);

const quantity = (what: string): z.ZodString => z.string().regex(QUANTITY, 'must be a Kubernetes quantity such as 10m or 48Mi').describe(what);

const imageSchema = z
  .strictObject({
    repository: z.string().min(1).describe('Agent image repository.').default('ghcr.io/sidekey/sidekey-agent'),
    tag: z.string().min(1).describe('Agent image tag (or a digest such as sha256:...).').default('0.1.0'),
    pullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).describe('imagePullPolicy of injected containers.').default('IfNotPresent'),
  })
  .describe('The image of the injected agent containers.');

const resourcesSchema = z
  .strictObject({
    cpu: quantity('CPU request of an agent container (no CPU limit is set).').default('10m'),
    memory: quantity('Memory request of an agent container; the memory limit is twice this. A one-backend agent measures 55-61 MiB RSS fresh and peaks at 58-63 MiB over 60 minutes of rotation with reloads and probes, its private memory flat at 16-20 MiB (npm run bench:agent); about 40 MiB of RSS are the Node binary pages shared between pods.').default('80Mi'),
  })
  .describe('Default agent resources; the sidekey.io/agent-cpu and sidekey.io/agent-memory annotations override them.');

const vaultSchema = z
  .strictObject({
    addr: z
      .url()
      .regex(HTTP_URL_PATTERN, 'must be an http(s) URL such as https://vault.vault.svc:8200')
      .superRefine((s, ctx) => {
        const problem = vaultAddrProblem(s);
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional()
      .describe('Default Vault/OpenBao address, e.g. https://vault.vault.svc:8200. Pods using vault: references need it here or in sidekey.io/vault-addr.'),
    auth: z.enum(POD_VAULT_AUTH).describe('Default Vault auth method.').default('kubernetes'),
    authPath: z.string().max(128).regex(VAULT_AUTH_PATH).optional().describe('Default auth mount path without the auth/ prefix; absent means the auth method\'s own mount (kubernetes, jwt or approle).'),
    allowHttp: z.boolean().describe('Let sidekey.io/vault-addr name an http:// address: the agent then sends the pod\'s service-account token (its Vault login) in clear text. Off: https only.').default(false),
    allowedAddrs: z
      .array(z.string().max(512).regex(HTTP_URL_PATTERN, 'must be an http(s) URL such as https://vault.vault.svc:8200'))
      .max(100)
      .describe('Addresses sidekey.io/vault-addr may name (compared by scheme, host and port), besides addr. Empty: any address (http only with allowHttp); set it so that a pod cannot send its token to a server of its choosing.')
      .default([]),
    allowSystemPaths: z.boolean().describe('Allow vault:auth/... and vault:sys/... references. Off: refused, since the agent would write what its own token may read there (auth/token/lookup-self: the token itself) into an app file.').default(false),
    role: z.string().regex(VAULT_ROLE).optional().describe('Default Vault role; absent means the pod must set sidekey.io/vault-role (kubernetes and jwt auth).'),
    namespace: z.string().max(128).regex(VAULT_NAMESPACE).optional().describe('Default Vault Enterprise / OpenBao namespace.'),
  })
  .describe('Vault/OpenBao defaults.');

const awsSchema = z
  .strictObject({
    region: z.string().regex(AWS_REGION).optional().describe('Default AWS region, used when neither sidekey.io/aws-region nor the app container\'s AWS_REGION env (IRSA sets it) gives one.'),
  })
  .describe('AWS Secrets Manager defaults.');

/** Where agents on a cluster find the file store: mounted read-only at fileStore (which is then a directory). */
const fileStoreVolumeSchema = z
  .strictObject({
    hostPath: z.string().regex(/^\//, 'must be an absolute path').optional().describe('A directory on the node (a local single-node cluster).'),
    configMap: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a ConfigMap name').max(253).optional()
      .describe("A ConfigMap in the pod's namespace: one key per store document, e.g. payments.yaml for file:payments#field."),
  })
  .refine((v) => (v.hostPath === undefined) !== (v.configMap === undefined), { error: 'give exactly one of hostPath or configMap' })
  .describe('Mounts the file store into injected agents (read-only, at fileStore) on a cluster; without it the agent must find fileStore in its own filesystem.');

export const injectionSettingsSchema = z.strictObject({
  image: imageSchema.prefault({}),
  resources: resourcesSchema.prefault({}),
  vault: vaultSchema.prefault({}),
  aws: awsSchema.prefault({}),
  defaultMode: z.enum(MODES).describe('Mode of pods without sidekey.io/mode.').default('sidecar'),
  mountPath: z.string().regex(/^\//, 'must be an absolute path').describe('Default directory where app containers see the files.').default(DEFAULT_MOUNT_PATH),
  tmpfsSize: quantity('Default sizeLimit of the memory volume holding the files.').default('1Mi'),
  minRefresh: duration(`Floor for sidekey.io/refresh: shorter intervals are refused, to protect the backends. At least ${formatDuration(REFRESH_FLOOR_MS)}, the agent's own floor.`)
    .regex(DURATION_FROM_10S, `must be a Go-style duration (s, m, h) of at least ${formatDuration(REFRESH_FLOOR_MS)}, such as 30s or 1m`)
    .refine((s) => (parseDuration(s) ?? 0) >= REFRESH_FLOOR_MS, { error: `must be at least ${formatDuration(REFRESH_FLOOR_MS)}, the agent's own floor` })
    .default('30s'),
  fileStore: z
    .string()
    .regex(/^\//, 'must be an absolute path')
    .optional()
    .describe('Directory (or YAML file) of the embedded file store, as the agent sees it; enables file: references. For local runs, the demo and tests.'),
  fileStoreVolume: fileStoreVolumeSchema.optional(),
});

export type InjectionSettings = z.infer<typeof injectionSettingsSchema>;
export type InjectionSettingsInput = z.input<typeof injectionSettingsSchema>;
