// The agent's Prometheus metrics, on a Registry of their own (no module-global state). Labels carry provider
// names, error codes, file names and operations: never a reference's value or a secret.
// prom-client's index also loads its cluster aggregator and push gateway, which pull in cluster, child_process,
// https and tls: importing the modules used here one by one saves the agent ~4 MiB RSS and ~2 MiB private memory.
import Counter from 'prom-client/lib/counter.js';
import Gauge from 'prom-client/lib/gauge.js';
import Histogram from 'prom-client/lib/histogram.js';
import heapSizeAndUsed from 'prom-client/lib/metrics/heapSizeAndUsed.js';
import residentMemory from 'prom-client/lib/metrics/osMemoryHeap.js';
import maxFileDescriptors from 'prom-client/lib/metrics/processMaxFileDescriptors.js';
import openFileDescriptors from 'prom-client/lib/metrics/processOpenFileDescriptors.js';
import startTime from 'prom-client/lib/metrics/processStartTime.js';
import Registry from 'prom-client/lib/registry.js';
import type { Provider } from '../injector/reference.ts';

export interface AgentMetrics {
  readonly registry: Registry;
  readonly fetchDuration: Histogram<'provider'>;
  readonly fetchErrors: Counter<'provider' | 'code'>;
  readonly lastSuccess: Gauge<'file'>;
  readonly certificateExpiry: Gauge<'file'>;
  readonly writes: Counter<'result'>;
  readonly reloads: Counter<'kind' | 'result'>;
  readonly leaseRenewals: Counter<'provider' | 'result'>;
  readonly backendCalls: Counter<'provider' | 'operation'>;
  /** The ProviderDeps.countCall hook. */
  countCall(provider: Provider, operation: string): void;
}

const PROCESS_PREFIX = 'sidekey_agent_';

/**
 * The process metrics that tell an operator about a sidecar's health: CPU, resident memory, V8 heap, file
 * descriptors, start time. Not prom-client's whole default set: its event-loop delay sampler is a timer that
 * keeps an idle agent waking, its GC metrics an observer on every collection, and its CPU counter loads the
 * OpenTelemetry API for exemplars; together ~1.3 MiB of RSS and private memory in every pod. CPU is counted here.
 */
function registerProcessMetrics(registry: Registry): void {
  for (const register of [residentMemory, heapSizeAndUsed, openFileDescriptors, maxFileDescriptors, startTime])
    register(registry, { prefix: PROCESS_PREFIX });
  const cpuSeconds = (name: string, help: string, read: (usage: NodeJS.CpuUsage) => number): void => {
    let counted = 0;
    registry.registerMetric(
      new Counter({
        name: `${PROCESS_PREFIX}process_cpu_${name}`,
        help,
        registers: [],
        // Counted when scraped: the CPU time used since the previous scrape.
        collect() {
          const seconds = read(process.cpuUsage()) / 1e6;
          this.inc(seconds - counted);
          counted = seconds;
        },
      }),
    );
  };
  cpuSeconds('user_seconds_total', 'User CPU time spent in seconds.', (u) => u.user);
  cpuSeconds('system_seconds_total', 'System CPU time spent in seconds.', (u) => u.system);
  cpuSeconds('seconds_total', 'Total user and system CPU time spent in seconds.', (u) => u.user + u.system);
}

export function createMetrics(): AgentMetrics {
  const registry = new Registry();
  registerProcessMetrics(registry);
  const registers = [registry];
  const backendCalls = new Counter({
    name: 'sidekey_agent_backend_calls_total',
    help: 'Backend API calls by provider and operation (e.g. aws BatchGetSecretValue, vault login).',
    labelNames: ['provider', 'operation'] as const,
    registers,
  });
  const fileGauge = (name: string, help: string): Gauge<'file'> =>
    new Gauge({ name, help, labelNames: ['file'] as const, registers });
  return {
    registry,
    fetchDuration: new Histogram({
      name: 'sidekey_agent_fetch_duration_seconds',
      help: 'Latency of one batched fetch from a provider.',
      labelNames: ['provider'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    fetchErrors: new Counter({
      name: 'sidekey_agent_fetch_errors_total',
      help: 'Failed secret fetches by provider and stable error code.',
      labelNames: ['provider', 'code'] as const,
      registers,
    }),
    lastSuccess: fileGauge(
      'sidekey_agent_last_success_timestamp_seconds',
      'Unix time of the last successful fetch (or lease renewal) behind each file.',
    ),
    certificateExpiry: fileGauge(
      'sidekey_agent_certificate_expiry_timestamp_seconds',
      'Unix time when the certificate written with each file expires (its notAfter; Vault PKI files only).',
    ),
    writes: new Counter({
      name: 'sidekey_agent_writes_total',
      help: 'Atomic writes of the secrets directory by result (ok, unchanged, failed).',
      labelNames: ['result'] as const,
      registers,
    }),
    reloads: new Counter({
      name: 'sidekey_agent_reloads_total',
      help: 'App reloads by kind (signal, http) and result (ok, failed).',
      labelNames: ['kind', 'result'] as const,
      registers,
    }),
    leaseRenewals: new Counter({
      name: 'sidekey_agent_lease_renewals_total',
      help: 'Lease renewals by provider and result (ok, failed).',
      labelNames: ['provider', 'result'] as const,
      registers,
    }),
    backendCalls,
    countCall(provider, operation) {
      backendCalls.inc({ provider, operation });
    },
  };
}
