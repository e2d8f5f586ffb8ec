// The injection settings: cluster-wide defaults an operator gives the webhook (and `sidekey render`), which
// annotations may override per pod. Plain JSON-able zod schema with a description on every field: the
// webhook's configuration schema embeds it and the Helm chart's values.schema.json is generated from it.
// Each provider adds its own fields (its declaration in injector/providers/).
import { z } from 'zod';
import { DEFAULT_MOUNT_PATH, REFRESH_FLOOR_MS } from './constants.ts';
import { formatDuration, parseDuration } from './duration.ts';
import { CLASSIC_REMOVED, MODES } from './agent-config.ts';
import { PROVIDER_SETTINGS } from './providers/index.ts';
import { proxySchema } from './proxy.ts';

/** Kubernetes resource quantity, e.g. `10m`, `0.5`, `48Mi`, `1G`. */
export const QUANTITY = /^\d+(\.\d+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$/;

/**
 * A Go-style duration of at least 10 s, as a pattern (RE2, no lookahead) the chart's values.schema.json can
 * carry: an hour or minute term with a non-zero value, or a seconds term of two digits or more.
 */
const TERM = '[0-9]+(\\.[0-9]+)?(ms|s|m|h)';
export const DURATION_FROM_10S = new RegExp(
  `^(${TERM})*([1-9][0-9]*(\\.[0-9]+)?(h|m)|[1-9][0-9]+(\\.[0-9]+)?s)(${TERM})*$`,
);

const duration = (what: string): z.ZodString =>
  z
    .string()
    .refine((s) => parseDuration(s) !== undefined, { error: 'must be a Go-style duration such as 90s or 1h30m' })
    .describe(what);

const quantity = (what: string): z.ZodString =>
  z.string().regex(QUANTITY, 'must be a Kubernetes quantity such as 10m or 48Mi').describe(what);

const imageSchema = z
  .strictObject({
    repository: z.string().min(1).describe('Agent image repository.').default('ghcr.io/sidekey/sidekey-agent'),
    tag: z.string().min(1).describe('Agent image tag (or a digest such as sha256:...).').default('0.1.0'),
    pullPolicy: z
      .enum(['Always', 'IfNotPresent', 'Never'])
      .describe('imagePullPolicy of injected containers.')
      .default('IfNotPresent'),
  })
  .describe('The image of the injected agent containers.');

const resourcesSchema = z
  .strictObject({
    cpu: quantity('CPU request of an agent container (no CPU limit is set).').default('10m'),
    memory: quantity(
      'Memory request of an agent container; the memory limit is twice this. A one-backend agent measures 55-61 MiB RSS fresh and peaks at 58-63 MiB over 60 minutes of rotation with reloads and probes, its private memory flat at 16-20 MiB (npm run bench:agent); about 40 MiB of RSS are the Node binary pages shared between pods.',
    ).default('80Mi'),
  })
  .describe('Default agent resources; the sidekey.io/agent-cpu and sidekey.io/agent-memory annotations override them.');

export const injectionSettingsSchema = z.strictObject({
  image: imageSchema.prefault({}),
  resources: resourcesSchema.prefault({}),
  ...PROVIDER_SETTINGS,
  defaultMode: z
    .enum(MODES, { error: (issue) => (issue.input === 'classic' ? CLASSIC_REMOVED : undefined) })
    .describe('Mode of pods without sidekey.io/mode.')
    .default('sidecar'),
  mountPath: z
    .string()
    .regex(/^\//, 'must be an absolute path')
    .describe('Default directory where app containers see the files.')
    .default(DEFAULT_MOUNT_PATH),
  tmpfsSize: quantity('Default sizeLimit of the memory volume holding the files.').default('1Mi'),
  minRefresh: duration(
    `Floor for sidekey.io/refresh: shorter intervals are refused, to protect the backends. At least ${formatDuration(REFRESH_FLOOR_MS)}, the agent's own floor.`,
  )
    .regex(
      DURATION_FROM_10S,
      `must be a Go-style duration (s, m, h) of at least ${formatDuration(REFRESH_FLOOR_MS)}, such as 30s or 1m`,
    )
    .refine((s) => (parseDuration(s) ?? 0) >= REFRESH_FLOOR_MS, {
      error: `must be at least ${formatDuration(REFRESH_FLOOR_MS)}, the agent's own floor`,
    })
    .default('30s'),
  proxy: proxySchema.prefault({}),
});

export type InjectionSettings = z.infer<typeof injectionSettingsSchema>;
export type InjectionSettingsInput = z.input<typeof injectionSettingsSchema>;
