// The chart's observability kit against real tools and the real code: the PrometheusRule's rules pass
// `promtool check rules` and fire (and stay quiet) on series as the agents and the webhook export them
// (`promtool test rules`); every query of the rules and the Grafana dashboard is valid PromQL and names only
// metrics the code registers.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { createMetrics as createAgentMetrics } from '../agent/metrics.ts';
import { CHART_DIR } from '../scripts/chart-values-schema.ts';
import { createMetrics as createWebhookMetrics } from '../webhook/metrics.ts';
import { requireTool, TOOLS_DIR } from '../devkit/process.ts';

const HELM = requireTool(join(TOOLS_DIR, 'bin', 'helm'), 'helm');
const PROMTOOL = requireTool(join(TOOLS_DIR, 'bin', 'promtool'), 'promtool');
const NAMESPACE = 'sidekey-system';
const RELEASE = 'sk';
const JOB = `${RELEASE}-sidekey`;

const scratch = mkdtempSync(join(tmpdir(), 'sidekey-monitoring-'));
after(() => {
  rmSync(scratch, { recursive: true, force: true });
});

interface Rule {
  readonly alert: string;
  readonly expr: string;
  readonly annotations: { readonly summary: string; readonly description: string };
}
interface RuleGroup {
  readonly name: string;
  readonly rules: readonly Rule[];
}
interface DashboardPanel {
  readonly title: string;
  readonly targets: readonly { readonly expr: string }[];
}

function renderKit(): {
  groups: readonly RuleGroup[];
  dashboard: { panels: readonly DashboardPanel[]; templating: { list: readonly { query?: unknown }[] } };
} {
  const out = execFileSync(
    HELM,
    [
      'template',
      RELEASE,
      CHART_DIR,
      '--namespace',
      NAMESPACE,
      '--kube-version',
      '1.30.0',
      '--values',
      join(CHART_DIR, 'ci', 'monitoring-values.yaml'),
    ],
    { encoding: 'utf8' },
  );
  const objects = parseAllDocuments(out).map(
    (d) => d.toJS() as { kind: string; spec?: { groups: RuleGroup[] }; data?: Record<string, string> } | null,
  );
  const rule = objects.find((o) => o?.kind === 'PrometheusRule');
  const dashboard = objects.find((o) => o?.kind === 'ConfigMap' && o.data?.['sidekey.json'] !== undefined);
  assert.ok(
    rule?.spec !== undefined && dashboard?.data !== undefined,
    'monitoring-values.yaml renders the PrometheusRule and the dashboard',
  );
  return {
    groups: rule.spec.groups,
    dashboard: JSON.parse(dashboard.data['sidekey.json'] ?? '') as ReturnType<typeof renderKit>['dashboard'],
  };
}

function promtool(args: readonly string[]): { status: number; output: string } {
  const r = spawnSync(PROMTOOL, args, { encoding: 'utf8', cwd: scratch });
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

/** Every series name the agent and the webhook register (histograms as their _bucket, _sum and _count series). */
async function exportedNames(): Promise<Set<string>> {
  const registries = [createAgentMetrics().registry, createWebhookMetrics({ defaultMetrics: false }).registry];
  const names = new Set<string>();
  for (const registry of registries) {
    for (const metric of await registry.getMetricsAsJSON()) {
      names.add(metric.name);
      if (String(metric.type) === 'histogram')
        for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${metric.name}${suffix}`);
    }
  }
  return names;
}

const kit = renderKit();
const rulesFile = join(scratch, 'rules.yaml');
writeFileSync(rulesFile, stringify({ groups: kit.groups }));

/** Grafana's variables as PromQL accepts them. */
const dashboardExprs = kit.dashboard.panels.flatMap((p) =>
  p.targets.map((t) => ({
    panel: p.title,
    expr: t.expr.replaceAll('$__rate_interval', '5m').replaceAll('$namespace', '.*'),
  })),
);

void describe('alert rules and dashboard', () => {
  void test('promtool check rules accepts the PrometheusRule', () => {
    const r = promtool(['check', 'rules', rulesFile]);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /SUCCESS: 10 rules found/);
  });

  void test('every dashboard query is valid PromQL', () => {
    const file = join(scratch, 'dashboard-queries.yaml');
    const rules = dashboardExprs.map(({ expr }, i) => ({ record: `sidekey:dashboard_query_${i}`, expr }));
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
    const r = promtool(['check', 'rules', file]);
    assert.equal(r.status, 0, r.output);
  });

  void test('rules and dashboard name only metrics the code exports', async () => {
    const exported = await exportedNames();
    const used = [
      ...kit.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }))),
      ...dashboardExprs.map((d) => ({ where: `panel ${d.panel}`, expr: d.expr })),
    ];
    const variableQuery = JSON.stringify(kit.dashboard.templating.list.map((v) => v.query));
    for (const { where, expr } of [...used, { where: 'dashboard variables', expr: variableQuery }]) {
      for (const name of expr.match(/\bsidekey_[a-z_]+\b/g) ?? [])
        assert.ok(exported.has(name), `${where} uses ${name}, which nothing exports`);
    }
    const covered = new Set(used.flatMap((u) => u.expr.match(/\bsidekey_[a-z_]+\b/g) ?? []));
    for (const name of [
      'sidekey_agent_last_success_timestamp_seconds',
      'sidekey_agent_fetch_errors_total',
      'sidekey_agent_reloads_total',
      'sidekey_agent_certificate_expiry_timestamp_seconds',
      'sidekey_webhook_admissions_total',
      'sidekey_webhook_admission_duration_seconds_bucket',
      'sidekey_webhook_workload_checks_total',
      'sidekey_webhook_tls_certificate_expiry_timestamp_seconds',
    ]) {
      assert.ok(covered.has(name), `nothing watches ${name}`);
    }
  });

  void test('promtool test rules: each alert fires on its fault and stays quiet on healthy series', () => {
    const pod = { namespace: 'shop', pod: 'payments-0' };
    const series = (
      name: string,
      labels: Record<string, string>,
      values: string,
    ): { series: string; values: string } => ({
      series: `${name}{${Object.entries(labels)
        .map(([k, v]) => `${k}="${v}"`)
        .join(',')}}`,
      values,
    });
    const webhook = { namespace: NAMESPACE };
    const rules = new Map(kit.groups.flatMap((g) => g.rules.map((r) => [r.alert, r])));
    /**
     * A firing alert: its labels and its summary as Prometheus renders the template (the description is fixed text).
     */
    const firing = (
      alertname: string,
      labels: Record<string, string>,
      summary: string,
    ): { exp_labels: Record<string, string>; exp_annotations: Record<string, string> } => ({
      exp_labels: labels,
      exp_annotations: { summary, description: rules.get(alertname)?.annotations.description ?? '' },
    });
    const tests = [
      {
        // One file last fetched at t=0, one refreshed every minute; monitoring-values.yaml sets 3600 s.
        interval: '1m',
        input_series: [
          series('sidekey_agent_last_success_timestamp_seconds', { ...pod, file: 'db' }, '0x90'),
          series('sidekey_agent_last_success_timestamp_seconds', { ...pod, file: 'api-key' }, '0+60x90'),
          series('sidekey_agent_fetch_errors_total', { ...pod, provider: 'aws', code: 'THROTTLED' }, '0+1x60'),
          series('sidekey_agent_fetch_errors_total', { ...pod, provider: 'vault', code: 'NOT_FOUND' }, '3x60'),
          series('sidekey_agent_reloads_total', { ...pod, kind: 'signal', result: 'failed' }, '0 0 1x60'),
          series('sidekey_agent_reloads_total', { ...pod, kind: 'http', result: 'ok' }, '0+1x60'),
        ],
        alert_rule_test: [
          { eval_time: '50m', alertname: 'SidekeySecretStale', exp_alerts: [] },
          {
            eval_time: '70m',
            alertname: 'SidekeySecretStale',
            exp_alerts: [
              firing(
                'SidekeySecretStale',
                { ...pod, file: 'db', severity: 'warning' },
                'Secret file db of shop/payments-0 was last fetched 1h 10m 0s ago',
              ),
            ],
          },
          { eval_time: '10m', alertname: 'SidekeyFetchErrors', exp_alerts: [] },
          {
            eval_time: '40m',
            alertname: 'SidekeyFetchErrors',
            exp_alerts: [
              firing(
                'SidekeyFetchErrors',
                { ...pod, provider: 'aws', code: 'THROTTLED', severity: 'warning' },
                'shop/payments-0: aws fetches fail with THROTTLED',
              ),
            ],
          },
          { eval_time: '1m', alertname: 'SidekeyReloadFailures', exp_alerts: [] },
          {
            eval_time: '5m',
            alertname: 'SidekeyReloadFailures',
            exp_alerts: [
              firing(
                'SidekeyReloadFailures',
                { ...pod, kind: 'signal', severity: 'warning' },
                'shop/payments-0: the app did not take a signal reload',
              ),
            ],
          },
        ],
      },
      {
        // 1h certificates: tls.crt issued at t=0 and never again, web.crt re-issued every minute.
        interval: '1m',
        input_series: [
          series('sidekey_agent_last_success_timestamp_seconds', { ...pod, file: 'tls.crt' }, '0x90'),
          series('sidekey_agent_certificate_expiry_timestamp_seconds', { ...pod, file: 'tls.crt' }, '3600x90'),
          series('sidekey_agent_last_success_timestamp_seconds', { ...pod, file: 'web.crt' }, '0+60x90'),
          series('sidekey_agent_certificate_expiry_timestamp_seconds', { ...pod, file: 'web.crt' }, '3600+60x90'),
        ],
        alert_rule_test: [
          { eval_time: '40m', alertname: 'SidekeyCertificateExpiry', exp_alerts: [] },
          {
            eval_time: '55m',
            alertname: 'SidekeyCertificateExpiry',
            exp_alerts: [
              firing(
                'SidekeyCertificateExpiry',
                { ...pod, file: 'tls.crt', severity: 'critical' },
                'Certificate file tls.crt of shop/payments-0 expires in 5m 0s',
              ),
            ],
          },
        ],
      },
      {
        interval: '1m',
        input_series: [
          series('up', { job: JOB, namespace: NAMESPACE }, '1x10 0x20'),
          series('sidekey_webhook_admissions_total', { ...webhook, result: 'invalid' }, '0x10 0+5x30'),
          series('sidekey_webhook_admissions_total', { ...webhook, result: 'injected' }, '0+100x40'),
          // Workload checks answered "invalid" from t=10m, beside a steady stream of denials.
          series('sidekey_webhook_workload_checks_total', { ...webhook, result: 'invalid' }, '0x10 0+2x30'),
          series('sidekey_webhook_workload_checks_total', { ...webhook, result: 'denied' }, '0+20x40'),
          series('sidekey_webhook_tls_reloads_total', { ...webhook, outcome: 'failure' }, '0x5 1x30'),
          series('sidekey_webhook_tls_reloads_total', { ...webhook, outcome: 'success' }, '0+1x40'),
          // Every admission between 0.25 s and 1 s: the 99th percentile is near 1 s, over the 0.5 s threshold.
          series(
            'sidekey_webhook_admission_duration_seconds_bucket',
            { ...webhook, result: 'injected', le: '0.25' },
            '0x40',
          ),
          series(
            'sidekey_webhook_admission_duration_seconds_bucket',
            { ...webhook, result: 'injected', le: '1' },
            '0+10x40',
          ),
          series(
            'sidekey_webhook_admission_duration_seconds_bucket',
            { ...webhook, result: 'injected', le: '+Inf' },
            '0+10x40',
          ),
          // A certificate that expires 10 days after t=0 (the threshold is 14 days).
          series(
            'sidekey_webhook_tls_certificate_expiry_timestamp_seconds',
            { ...webhook, pod: 'sk-sidekey-0' },
            '864000x90',
          ),
        ],
        alert_rule_test: [
          { eval_time: '9m', alertname: 'SidekeyWebhookDown', exp_alerts: [] },
          // absent() of a filtered vector keeps no labels.
          {
            eval_time: '20m',
            alertname: 'SidekeyWebhookDown',
            exp_alerts: [
              firing('SidekeyWebhookDown', { severity: 'critical' }, 'No Sidekey webhook replica is scraped as up'),
            ],
          },
          { eval_time: '9m', alertname: 'SidekeyWebhookErrors', exp_alerts: [] },
          {
            eval_time: '30m',
            alertname: 'SidekeyWebhookErrors',
            exp_alerts: [
              firing(
                'SidekeyWebhookErrors',
                { ...webhook, severity: 'warning' },
                'The Sidekey webhook in sidekey-system receives requests that are not admission reviews',
              ),
            ],
          },
          { eval_time: '9m', alertname: 'SidekeyWorkloadChecksFailing', exp_alerts: [] },
          {
            eval_time: '30m',
            alertname: 'SidekeyWorkloadChecksFailing',
            exp_alerts: [
              firing(
                'SidekeyWorkloadChecksFailing',
                { ...webhook, severity: 'warning' },
                'The Sidekey webhook in sidekey-system cannot check workloads at apply: they are applied unchecked',
              ),
            ],
          },
          { eval_time: '3m', alertname: 'SidekeyWebhookTlsReloadFailures', exp_alerts: [] },
          {
            eval_time: '8m',
            alertname: 'SidekeyWebhookTlsReloadFailures',
            exp_alerts: [
              firing(
                'SidekeyWebhookTlsReloadFailures',
                { ...webhook, severity: 'warning' },
                'The Sidekey webhook in sidekey-system could not load a renewed certificate',
              ),
            ],
          },
          { eval_time: '5m', alertname: 'SidekeyWebhookSlow', exp_alerts: [] },
          {
            eval_time: '20m',
            alertname: 'SidekeyWebhookSlow',
            exp_alerts: [
              firing(
                'SidekeyWebhookSlow',
                { ...webhook, severity: 'warning' },
                'Sidekey admissions in sidekey-system take 992.5ms at the 99th percentile',
              ),
            ],
          },
          { eval_time: '30m', alertname: 'SidekeyWebhookCertificateExpiry', exp_alerts: [] },
          {
            eval_time: '80m',
            alertname: 'SidekeyWebhookCertificateExpiry',
            exp_alerts: [
              firing(
                'SidekeyWebhookCertificateExpiry',
                { ...webhook, severity: 'critical' },
                'The Sidekey webhook certificate in sidekey-system expires in 9d 22h 40m 0s',
              ),
            ],
          },
        ],
      },
      {
        // Workload checks doing their job: denials and warnings at a high rate are not a fault.
        interval: '1m',
        input_series: ['passed', 'skipped', 'denied', 'warned'].map((result) =>
          series('sidekey_webhook_workload_checks_total', { ...webhook, result }, '0+50x60'),
        ),
        alert_rule_test: [{ eval_time: '50m', alertname: 'SidekeyWorkloadChecksFailing', exp_alerts: [] }],
      },
    ];
    const file = join(scratch, 'rules.test.yaml');
    writeFileSync(file, stringify({ rule_files: [rulesFile], evaluation_interval: '1m', tests }));
    const r = promtool(['test', 'rules', file]);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /SUCCESS/);
    const tested = new Set(
      tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)),
    );
    assert.deepEqual([...tested].sort(), [...rules.keys()].sort(), 'every alert is tested firing');
  });

  void test('the dashboard JSON is what the chart ships', () => {
    const shipped: unknown = JSON.parse(readFileSync(join(CHART_DIR, 'dashboards', 'sidekey.json'), 'utf8'));
    assert.deepEqual(kit.dashboard, shipped);
  });
});
