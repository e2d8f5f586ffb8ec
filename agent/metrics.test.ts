import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMetrics } from './metrics.ts';

const sample = (text: string, name: string): number =>
  Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

void describe('agent metrics', () => {
  void it('exposes process health: CPU counted between scrapes, memory, heap, file descriptors, start time', async () => {
    const { registry } = createMetrics();
    const first = await registry.metrics();
    const busyUntil = process.cpuUsage().user + 20_000;
    while (process.cpuUsage().user < busyUntil); // 20 ms of user CPU
    const second = await registry.metrics();
    for (const name of ['user_seconds_total', 'system_seconds_total', 'seconds_total']) {
      const metric = `sidekey_agent_process_cpu_${name}`;
      assert.match(second, new RegExp(`^# TYPE ${metric} counter$`, 'm'));
      assert.ok(sample(second, metric) >= sample(first, metric), `${metric} never decreases`);
    }
    assert.ok(
      sample(second, 'sidekey_agent_process_cpu_user_seconds_total') -
        sample(first, 'sidekey_agent_process_cpu_user_seconds_total') >=
        0.02,
    );
    assert.ok(
      sample(second, 'sidekey_agent_process_cpu_seconds_total') >=
        sample(second, 'sidekey_agent_process_cpu_user_seconds_total'),
    );
    for (const metric of [
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'process_open_fds',
      'process_start_time_seconds',
    ]) {
      assert.ok(sample(second, `sidekey_agent_${metric}`) > 0, metric);
    }
  });

  void it('process metrics are the documented set, without a sampler that would wake an idle agent', async () => {
    const names = (await createMetrics().registry.getMetricsAsJSON())
      .map((m) => m.name)
      .filter((n) => /^sidekey_agent_(process|nodejs)_/.test(n));
    assert.deepEqual(names.sort(), [
      'sidekey_agent_nodejs_external_memory_bytes',
      'sidekey_agent_nodejs_heap_size_total_bytes',
      'sidekey_agent_nodejs_heap_size_used_bytes',
      'sidekey_agent_process_cpu_seconds_total',
      'sidekey_agent_process_cpu_system_seconds_total',
      'sidekey_agent_process_cpu_user_seconds_total',
      'sidekey_agent_process_heap_bytes',
      'sidekey_agent_process_max_fds',
      'sidekey_agent_process_open_fds',
      'sidekey_agent_process_resident_memory_bytes',
      'sidekey_agent_process_start_time_seconds',
      'sidekey_agent_process_virtual_memory_bytes',
    ]);
  });
});
