// The chart's NetworkPolicy, on by default: ingress to the webhook pods on the HTTPS port only, and the metrics
// port only from networkPolicy.metricsFrom (nobody when it is empty).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { CHART_DIR } from '../scripts/chart-values-schema.ts';
import { requireTool, TOOLS_DIR } from '../devkit/process.ts';

const HELM = requireTool(join(TOOLS_DIR, 'bin', 'helm'), 'helm');

interface Rule {
  readonly from?: unknown[];
  readonly ports: { port: number; protocol: string }[];
}
interface K8sObject {
  readonly kind: string;
  readonly spec: {
    podSelector?: { matchLabels: Record<string, string> };
    policyTypes?: string[];
    ingress?: Rule[];
    selector?: { matchLabels: Record<string, string> };
  };
}

function render(...set: string[]): K8sObject[] {
  const r = spawnSync(
    HELM,
    ['template', 'sk', CHART_DIR, '--kube-version', '1.30.0', ...set.flatMap((s) => ['--set-json', s])],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

void it('admits the webhook port from anywhere and nothing else by default', () => {
  const objects = render();
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
  assert.equal(policies.length, 1);
  const policy = policies[0];
  if (policy === undefined) return;
  const deployment = objects.find((o) => o.kind === 'Deployment');
  assert.deepEqual(policy.spec.podSelector?.matchLabels, deployment?.spec.selector?.matchLabels);
  assert.deepEqual(policy.spec.policyTypes, ['Ingress']);
  assert.deepEqual(policy.spec.ingress, [{ ports: [{ port: 8443, protocol: 'TCP' }] }]);
});

void it('admits the metrics port only from the configured peers, and can be turned off', () => {
  const monitoring = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } };
  const [policy] = render(`networkPolicy.metricsFrom=${JSON.stringify([monitoring])}`, 'config.port=10443').filter(
    (o) => o.kind === 'NetworkPolicy',
  );
  assert.deepEqual(policy?.spec.ingress, [
    { ports: [{ port: 10443, protocol: 'TCP' }] },
    { from: [monitoring], ports: [{ port: 9090, protocol: 'TCP' }] },
  ]);
  assert.deepEqual(
    render('networkPolicy.enabled=false').filter((o) => o.kind === 'NetworkPolicy'),
    [],
  );
});
