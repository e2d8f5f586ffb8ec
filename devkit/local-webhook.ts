// The real webhook server on 127.0.0.1 (a free port, a throwaway certificate) and a client that admits a pod
// the way the API server does: POST an AdmissionReview to /mutate over HTTPS, then apply the returned JSON
// patch. Used by the demo and by the pod-level end-to-end tests.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { DestinationStream } from 'pino';
import { applyPatch } from 'rfc6902';
import type { Operation } from 'rfc6902';
import { httpCall } from './http.ts';
import { createLoopbackCert } from './tls.ts';
import { webhookConfigSchema } from '../webhook/config.ts';
import type { WebhookConfigInput } from '../webhook/config.ts';
import { createMetrics } from '../webhook/metrics.ts';
import { startWebhook } from '../webhook/server.ts';
import { podReview } from './pod-review.ts';

export type AdmissionAnswer =
  | {
      readonly allowed: true;
      readonly pod: unknown;
      readonly patch: readonly Operation[];
      readonly warnings: readonly string[];
      readonly ms: number;
    }
  | {
      readonly allowed: false;
      readonly message: string;
      readonly codes: readonly string[];
      readonly warnings: readonly string[];
      readonly ms: number;
    };

export interface LocalWebhook {
  readonly url: string;
  admit(pod: unknown, namespace?: string): Promise<AdmissionAnswer>;
  close(): Promise<void>;
}

interface ReviewResponse {
  response?: {
    allowed?: boolean;
    patch?: string;
    warnings?: string[];
    status?: { message?: string; details?: { causes?: { reason?: string }[] } };
  };
}

/**
 * Starts the webhook with these settings (port and TLS files are chosen here); logs go to `logStream` (default:
 * nowhere).
 */
export async function startLocalWebhook(
  settings: WebhookConfigInput,
  logStream?: DestinationStream,
): Promise<LocalWebhook> {
  const dir = mkdtempSync(join(tmpdir(), 'sidekey-webhook-'));
  const tls = createLoopbackCert();
  writeFileSync(join(dir, 'tls.crt'), tls.cert);
  writeFileSync(join(dir, 'tls.key'), tls.key, { mode: 0o600 });
  const config = {
    ...webhookConfigSchema.parse({
      ...settings,
      tlsCert: join(dir, 'tls.crt'),
      tlsKey: join(dir, 'tls.key'),
      drainSeconds: 0,
    }),
    port: 0,
    metricsPort: 0,
  };
  const log = logStream === undefined ? pino({ level: 'silent' }) : pino({ level: config.logLevel }, logStream);
  const server = await startWebhook({
    config,
    log,
    metrics: createMetrics({ defaultMetrics: false }),
    host: '127.0.0.1',
  });
  const url = `https://127.0.0.1:${server.port}/mutate`;
  return {
    url,
    async admit(pod, namespace = 'default'): Promise<AdmissionAnswer> {
      const review = podReview(pod, { uid: randomUUID(), namespace });
      const started = performance.now();
      const { status, text } = await httpCall(new URL(url), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(review),
        ca: tls.cert,
        timeoutMs: 10_000,
        timeoutMessage: 'the webhook did not answer within 10 s',
      });
      const ms = performance.now() - started;
      if (status !== 200) throw new Error(`the webhook answered HTTP ${status}: ${text.slice(0, 500)}`);
      const response = (JSON.parse(text) as ReviewResponse).response ?? {};
      const warnings = response.warnings ?? [];
      if (response.allowed !== true) {
        const codes = (response.status?.details?.causes ?? []).map((c) => c.reason ?? '');
        return { allowed: false, message: response.status?.message ?? '', codes, warnings, ms };
      }
      const patch =
        response.patch === undefined
          ? []
          : (JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Operation[]);
      const patched = structuredClone(pod);
      const errors = applyPatch(patched, patch).filter((e) => e !== null);
      if (errors.length > 0)
        throw new Error(`the webhook's patch does not apply: ${errors.map((e) => e.message).join('; ')}`);
      return { allowed: true, pod: patched, patch, warnings, ms };
    },
    async close(): Promise<void> {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
