// The webhook's configuration: the injection defaults plus the server's own settings. Parsed once, frozen.
// The Helm chart's values.schema.json is generated from `webhookConfigSchema` (z.toJSONSchema), so it stays
// a plain JSON-able object schema with a description on every field.
import { z } from 'zod';
import { injectionSettingsSchema } from '../injector/settings.ts';
import { deepFreeze } from '../injector/agent-config.ts';
import type { ParseResult } from '../injector/agent-config.ts';

export const SIDECAR_MODES = ['auto', 'native'] as const;
export type SidecarMode = (typeof SIDECAR_MODES)[number];
const SIDECAR_CLASSIC_REMOVED =
  'classic was removed: Sidekey needs native sidecars (Kubernetes 1.29+); upgrade an older cluster, and use auto (the default) or native';

/** Namespaces never injected, whatever the configuration says. */
export const ALWAYS_EXCLUDED_NAMESPACES = ['kube-system', 'kube-node-lease'] as const;

/**
 * The largest AdmissionReview the API server sends: it refuses request bodies over 3 MiB (its
 * MaxRequestBodyBytes), and a CREATE review carries the object once plus a small envelope.
 */
export const API_SERVER_MAX_REVIEW_BYTES = 3 * 1024 * 1024 + 64 * 1024;

const port = (what: string): z.ZodNumber =>
  z.number().int().min(0).max(65_535).describe(`${what} 0 picks a free port (tests).`);

/** The fields without the cross-field rule below (the chart schema is built from them). */
export const webhookConfigFields = z.strictObject({
  ...injectionSettingsSchema.shape,
  port: port('HTTPS port of /mutate, /healthz and /readyz.').default(8443),
  metricsPort: port('HTTP port of Prometheus /metrics.').default(9090),
  tlsCert: z
    .string()
    .min(1)
    .describe('PEM certificate file (chain) served; reloaded when it changes.')
    .default('/etc/sidekey/tls/tls.crt'),
  tlsKey: z
    .string()
    .min(1)
    .describe('PEM private key file; reloaded when it changes.')
    .default('/etc/sidekey/tls/tls.key'),
  sidecarMode: z
    .enum(SIDECAR_MODES, { error: (issue) => (issue.input === 'classic' ? SIDECAR_CLASSIC_REMOVED : undefined) })
    .describe(
      'The agent is a native sidecar, which needs Kubernetes 1.29+. auto: read the cluster version at start and refuse to start below 1.29 (nothing is read when no cluster is configured); native: skip the check, so the webhook makes no API call.',
    )
    .default('auto'),
  namespace: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
    .max(63)
    .optional()
    .describe("The webhook's own namespace, never injected (default: env POD_NAMESPACE)."),
  excludedNamespaces: z
    .array(z.string().min(1).max(63))
    .max(1000)
    .describe("Namespaces never injected, in addition to kube-system, kube-node-lease and the webhook's own.")
    .default([]),
  maxBodyBytes: z
    .number()
    .int()
    .min(1024)
    .max(API_SERVER_MAX_REVIEW_BYTES)
    .describe(
      'Largest AdmissionReview body accepted; the API server sends at most its 3 MiB request limit plus the review envelope (3 MiB + 64 KiB, the default and the maximum). Bodies being read at once may hold four times this.',
    )
    .default(API_SERVER_MAX_REVIEW_BYTES),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).describe('pino log level.').default('info'),
  drainSeconds: z
    .number()
    .int()
    .min(0)
    .max(300)
    .describe('On SIGTERM, keep serving this long (readiness fails) before closing.')
    .default(5),
});

/** The two servers need two ports (0 picks a free one for each). */
export const webhookConfigSchema = webhookConfigFields.refine((c) => c.port === 0 || c.port !== c.metricsPort, {
  error: 'port and metricsPort must differ: the HTTPS and the metrics server each listen on their own',
  path: ['metricsPort'],
});

export type WebhookConfig = z.infer<typeof webhookConfigSchema>;
export type WebhookConfigInput = z.input<typeof webhookConfigSchema>;

/** Parses and freezes the webhook configuration; the error names fields, never values. */
export function parseWebhookConfig(raw: unknown): ParseResult<Readonly<WebhookConfig>> {
  const parsed = webhookConfigSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, error: `invalid webhook configuration:\n${z.prettifyError(parsed.error)}` };
  return { ok: true, value: deepFreeze(parsed.data) };
}
