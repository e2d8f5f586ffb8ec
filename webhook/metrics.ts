// Webhook metrics on a Registry of its own (never prom-client's global one), served on the metrics port.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { RESULTS } from './review.ts';
import type { ReviewResult } from './review.ts';
import { WORKLOAD_RESULTS } from './workload-review.ts';
import type { WorkloadResult } from './workload-review.ts';

export interface WebhookMetrics {
  readonly registry: Registry;
  observeAdmission(result: ReviewResult, seconds: number): void;
  /** A workload's pod template checked by the validating webhook. */
  observeWorkloadCheck(result: WorkloadResult, seconds: number): void;
  countTlsReload(outcome: 'success' | 'failure'): void;
  /** The serving certificate's notAfter, as Unix seconds (alerts fire before it passes). */
  setCertificateExpiry(notAfterSeconds: number): void;
}

const ADMISSION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

interface ResultMetricsSpec<R extends string> {
  readonly counter: string;
  readonly counterHelp: string;
  readonly histogram: string;
  readonly histogramHelp: string;
  readonly results: readonly R[];
}

/** A counter and a latency histogram by result, each result counted from zero (so rate() sees its first one). */
function resultMetrics<R extends string>(
  registry: Registry,
  spec: ResultMetricsSpec<R>,
): (result: R, seconds: number) => void {
  const counter = new Counter({
    name: spec.counter,
    help: spec.counterHelp,
    labelNames: ['result'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: spec.histogram,
    help: spec.histogramHelp,
    labelNames: ['result'],
    buckets: ADMISSION_BUCKETS,
    registers: [registry],
  });
  for (const result of spec.results) counter.inc({ result }, 0);
  return (result, seconds) => {
    counter.inc({ result });
    latency.observe({ result }, seconds);
  };
}

export function createMetrics(
  options: { readonly defaultMetrics: boolean } = { defaultMetrics: true },
): WebhookMetrics {
  const registry = new Registry();
  // The event-loop-delay probe samples every 10 ms by default: 100 wake-ups a second, most of the idle
  // webhook's CPU (6.7 → 0.33 ms per second measured). A sample a second still catches stalls.
  if (options.defaultMetrics)
    collectDefaultMetrics({ register: registry, prefix: 'sidekey_webhook_', eventLoopMonitoringPrecision: 1000 });
  const observeAdmission = resultMetrics(registry, {
    counter: 'sidekey_webhook_admissions_total',
    counterHelp:
      'Admission requests by result: injected, skipped (not opted in, excluded, not a pod CREATE), denied (bad annotations), invalid (not a review).',
    histogram: 'sidekey_webhook_admission_duration_seconds',
    histogramHelp: 'Time from the first body byte to the response, by result.',
    results: RESULTS,
  });
  const observeWorkloadCheck = resultMetrics(registry, {
    counter: 'sidekey_webhook_workload_checks_total',
    counterHelp:
      'Workload pod templates checked at apply, by result: passed, skipped (not opted in, excluded, template unchanged), denied, warned (warn mode), invalid (not a review).',
    histogram: 'sidekey_webhook_workload_check_duration_seconds',
    histogramHelp: 'Time from the first body byte to the response of a workload check, by result.',
    results: WORKLOAD_RESULTS,
  });
  const tlsReloads = new Counter({
    name: 'sidekey_webhook_tls_reloads_total',
    help: 'Serving certificate reloads by outcome.',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const certificateExpiry = new Gauge({
    name: 'sidekey_webhook_tls_certificate_expiry_timestamp_seconds',
    help: 'Unix time at which the serving certificate being served expires (notAfter).',
    registers: [registry],
  });
  return {
    registry,
    observeAdmission,
    observeWorkloadCheck,
    countTlsReload(outcome): void {
      tlsReloads.inc({ outcome });
    },
    setCertificateExpiry(notAfterSeconds): void {
      certificateExpiry.set(notAfterSeconds);
    },
  };
}
