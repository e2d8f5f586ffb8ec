// The Helm chart, rendered by the real helm (installed by the setup) with the default values and every value
// set in charts/sidekey/ci: helm lint, every object validated against the Kubernetes schemas (strict: an
// unknown field fails) or cert-manager's, and assertions on the fields that make the install safe.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { run as runCel, type CelInput } from '@bufbuild/cel';
import { Certificate, Issuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1';
import {
  PodMonitor,
  PrometheusRule,
  ServiceMonitor,
} from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { chartConfigSchema, CHART_DIR, staleChartFiles } from '../scripts/chart-values-schema.ts';
import { INJECTED_LABEL } from '../injector/constants.ts';
import { AGENT_PORT_NAME } from '../injector/containers.ts';
import { CHECKED_WORKLOADS } from '../injector/template-check.ts';
import { parseWebhookConfig } from '../webhook/config.ts';
import { WORKLOAD_PATHS } from '../webhook/workload-review.ts';
import { startFakeKubeApi, type FakeKubeApi } from './support/fake-kube-api.ts';
import { requireTool, TOOLS_DIR, VENV_BIN } from '../devkit/process.ts';

const HELM = requireTool(join(TOOLS_DIR, 'bin', 'helm'), 'helm');
const KUBE_VALIDATE = requireTool(join(VENV_BIN, 'kubernetes-validate'), 'kubernetes-validate');
/** The oldest Kubernetes the chart supports (Chart.yaml kubeVersion): render against it. */
const KUBE_VERSION = '1.30.0';
/** Validate against the oldest supported and the newest kubernetes-validate knows. */
const VALIDATE_VERSIONS = [KUBE_VERSION, '1.37.0'];
const NAMESPACE = 'sidekey-system';
const RELEASE = 'sk';
const CI_DIR = join(CHART_DIR, 'ci');
const INVALID_DIR = join(import.meta.dirname, 'fixtures', 'chart-invalid');
const PACKAGE_VERSION = (
  JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string }
).version;

const scratch = mkdtempSync(join(tmpdir(), 'sidekey-chart-'));
after(() => {
  rmSync(scratch, { recursive: true, force: true });
});

interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
  };
  readonly [field: string]: unknown;
}

// Rendered objects are read field by field below, after the schemas have validated their shapes: typing
// every Kubernetes kind here would only restate those schemas.
/* eslint-disable
   @typescript-eslint/no-explicit-any,
   @typescript-eslint/no-unsafe-member-access,
   @typescript-eslint/no-unsafe-assignment,
   @typescript-eslint/no-unsafe-argument,
   @typescript-eslint/no-unsafe-call,
   @typescript-eslint/no-unsafe-return
*/
type Any = any;

/** Runs helm without blocking the event loop (the fake API server below answers from this process). */
function helm(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(HELM, args, { env, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

const parseObjects = (text: string): K8sObject[] =>
  parseAllDocuments(text)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);

async function render(valuesFile?: string): Promise<K8sObject[]> {
  const args = ['template', RELEASE, CHART_DIR, '--namespace', NAMESPACE, '--kube-version', KUBE_VERSION];
  const r = await helm(valuesFile === undefined ? args : [...args, '--values', valuesFile]);
  assert.equal(r.status, 0, `helm template failed:\n${r.stderr}`);
  return parseObjects(r.stdout);
}

const isCertManager = (o: K8sObject): boolean => o.apiVersion.startsWith('cert-manager.io/');
const isPrometheusOperator = (o: K8sObject): boolean => o.apiVersion.startsWith('monitoring.coreos.com/');

/**
 * Kubernetes objects through kubernetes-validate --strict; cert-manager and prometheus-operator objects through their
 * models.
 */
function validate(objects: readonly K8sObject[], label: string): void {
  const file = join(scratch, `${label}.yaml`);
  writeFileSync(
    file,
    objects
      .filter((o) => !isCertManager(o) && !isPrometheusOperator(o))
      .map((o) => `---\n${JSON.stringify(o)}\n`)
      .join(''),
  );
  for (const version of VALIDATE_VERSIONS) {
    const r = spawnSync(KUBE_VALIDATE, ['--strict', '--quiet', '--kubernetes-version', version, file], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, `kubernetes-validate ${version}:\n${r.stdout}${r.stderr}`);
    assert.doesNotMatch(r.stdout + r.stderr, /Couldn't find schema/);
  }
  for (const o of objects.filter(isCertManager)) {
    if (o.kind === 'Certificate') new Certificate(o).validate();
    else if (o.kind === 'Issuer') new Issuer(o as Any).validate();
    else assert.fail(`unexpected cert-manager kind ${o.kind}`);
  }
  const monitoring: Record<string, (o: Any) => { validate(): void }> = {
    ServiceMonitor: (o) => new ServiceMonitor(o),
    PodMonitor: (o) => new PodMonitor(o),
    PrometheusRule: (o) => new PrometheusRule(o),
  };
  for (const o of objects.filter(isPrometheusOperator)) {
    const model = monitoring[o.kind];
    assert.ok(model !== undefined, `unexpected prometheus-operator kind ${o.kind}`);
    model(o).validate();
  }
}

function one(objects: readonly K8sObject[], kind: string, name?: string): Any {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `expected one ${kind}${name === undefined ? '' : ` ${name}`}, found ${found.length}`);
  return found[0];
}

/** Pod Security Standard "restricted" (k8s.io/pod-security-admission policy checks), plus a read-only root. */
function restrictedViolations(pod: Any): string[] {
  const problems: string[] = [];
  for (const field of ['hostNetwork', 'hostPID', 'hostIPC']) if (pod[field] === true) problems.push(field);
  const allowedVolumes = [
    'configMap',
    'csi',
    'downwardAPI',
    'emptyDir',
    'ephemeral',
    'persistentVolumeClaim',
    'projected',
    'secret',
    'image',
  ];
  for (const v of pod.volumes ?? []) {
    const type = Object.keys(v).find((k) => k !== 'name');
    if (type === undefined || !allowedVolumes.includes(type)) problems.push(`volume ${v.name}: ${String(type)}`);
  }
  const podSc = pod.securityContext ?? {};
  for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
    const sc = c.securityContext ?? {};
    const where = `container ${c.name}`;
    if (sc.privileged === true) problems.push(`${where}: privileged`);
    if (sc.allowPrivilegeEscalation !== false) problems.push(`${where}: allowPrivilegeEscalation not false`);
    if ((sc.runAsNonRoot ?? podSc.runAsNonRoot) !== true) problems.push(`${where}: runAsNonRoot not true`);
    if ((sc.runAsUser ?? podSc.runAsUser) === 0) problems.push(`${where}: runAsUser 0`);
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) problems.push(`${where}: capabilities not dropping ALL`);
    if ((sc.capabilities?.add ?? []).some((cap: string) => cap !== 'NET_BIND_SERVICE'))
      problems.push(`${where}: adds capabilities`);
    const seccomp = sc.seccompProfile?.type ?? podSc.seccompProfile?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost')
      problems.push(`${where}: seccompProfile ${String(seccomp)}`);
    if (sc.readOnlyRootFilesystem !== true) problems.push(`${where}: root filesystem writable`);
    for (const p of c.ports ?? []) if (p.hostPort !== undefined) problems.push(`${where}: hostPort`);
  }
  return problems;
}

const matchesLabels = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** What every rendering must satisfy, whatever the values. */
function assertInvariants(objects: readonly K8sObject[], values: Any): void {
  const rbacKinds = ['Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding'];
  assert.deepEqual(
    objects.filter((o) => rbacKinds.includes(o.kind)).map((o) => o.kind),
    [],
    'the webhook needs no RBAC',
  );
  assert.ok(
    !JSON.stringify(objects.filter((o) => o.kind !== 'Secret')).includes('"secrets"'),
    'nothing refers to the secrets resource',
  );

  const deployment = one(objects, 'Deployment');
  const pod = deployment.spec.template.spec;
  // hostNetwork is the one departure from "restricted" a value may ask for (EKS with a custom CNI).
  assert.deepEqual(restrictedViolations(pod), values.hostNetwork === true ? ['hostNetwork'] : []);
  for (const o of objects)
    assert.ok(
      matchesLabels(values.commonLabels ?? {}, o.metadata.labels ?? {}),
      `${o.kind} ${o.metadata.name} carries commonLabels`,
    );
  assert.equal(deployment.spec.replicas, values.replicaCount ?? 2);
  assert.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0);
  const podLabels = deployment.spec.template.metadata.labels;
  assert.ok(matchesLabels(deployment.spec.selector.matchLabels, podLabels));
  const affinity = pod.affinity.podAntiAffinity;
  const term =
    affinity.requiredDuringSchedulingIgnoredDuringExecution?.[0] ??
    affinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm;
  assert.equal(term.topologyKey, 'kubernetes.io/hostname');
  assert.ok(matchesLabels(term.labelSelector.matchLabels, podLabels));

  const [container] = pod.containers;
  assert.equal(pod.containers.length, 1);
  const tag: string = values.image?.tag ?? PACKAGE_VERSION;
  assert.equal(container.image, `ghcr.io/sidekey/sidekey-webhook${tag.startsWith('sha256:') ? '@' : ':'}${tag}`);
  assert.ok(container.resources.requests.cpu !== undefined && container.resources.limits.memory !== undefined);
  for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
    assert.equal(container[probe].httpGet.scheme, 'HTTPS', probe);
    assert.equal(container[probe].httpGet.port, 'https', probe);
  }
  const configMapName = pod.volumes.find((v: Any) => v.name === 'config').configMap.name;
  const config = parseWebhookConfig(JSON.parse(one(objects, 'ConfigMap', configMapName).data['config.json']));
  assert.ok(config.ok, config.ok ? '' : config.error);
  assert.equal(
    config.value.image.tag,
    values.config?.image?.tag ?? PACKAGE_VERSION,
    'agent image tag defaults to appVersion',
  );
  assert.equal(container.ports.find((p: Any) => p.name === 'https').containerPort, config.value.port);
  assert.equal(
    pod.automountServiceAccountToken,
    config.value.sidecarMode === 'auto',
    'token only for the /version call of sidecarMode auto',
  );
  assert.equal(one(objects, 'ServiceAccount').automountServiceAccountToken, false);

  const tlsMount = container.volumeMounts.find((m: Any) => m.mountPath === '/etc/sidekey/tls');
  assert.equal(tlsMount.subPath, undefined, 'the TLS Secret is mounted as a directory, so renewals reach the webhook');
  const tlsSecretName = pod.volumes.find((v: Any) => v.name === tlsMount.name).secret.secretName;
  assert.equal(config.value.tlsCert, `${tlsMount.mountPath}/tls.crt`);
  assert.equal(config.value.tlsKey, `${tlsMount.mountPath}/tls.key`);

  const service = one(objects, 'Service');
  assert.ok(matchesLabels(service.spec.selector, podLabels));
  const pdb = one(objects, 'PodDisruptionBudget');
  assert.ok(matchesLabels(pdb.spec.selector.matchLabels, podLabels));

  const mwc = one(objects, 'MutatingWebhookConfiguration');
  assert.equal(mwc.webhooks.length, 1);
  const [hook] = mwc.webhooks;
  assert.deepEqual(hook.rules, [
    { operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' },
  ]);
  assert.equal(hook.sideEffects, 'None');
  assert.deepEqual(hook.admissionReviewVersions, ['v1']);
  assert.equal(hook.timeoutSeconds, values.webhook?.timeoutSeconds ?? 5);
  assert.equal(hook.failurePolicy, values.webhook?.failurePolicy ?? 'Fail');
  assert.equal(hook.reinvocationPolicy, values.webhook?.reinvocationPolicy ?? 'Never');
  assert.deepEqual(hook.clientConfig.service, {
    name: service.metadata.name,
    namespace: NAMESPACE,
    path: '/mutate',
    port: service.spec.ports[0].port,
  });
  assert.equal(service.spec.ports[0].targetPort, 'https');
  const opted = hook.matchConditions.find((c: Any) => c.name === 'opted-in').expression;
  assert.match(opted, /'sidekey\.io\/inject' in object\.metadata\.annotations/);
  const exclusion = hook.namespaceSelector.matchExpressions.find((e: Any) => e.key === 'kubernetes.io/metadata.name');
  assert.equal(exclusion.operator, 'NotIn');
  for (const ns of ['kube-system', 'kube-node-lease', NAMESPACE, ...(values.config?.excludedNamespaces ?? [])])
    assert.ok(exclusion.values.includes(ns), ns);

  assertWorkloadCheck(objects, mwc, values);

  const tlsMode = values.tls?.mode ?? 'generate';
  if (tlsMode === 'generate') assertGeneratedTls(objects, hook, tlsSecretName, service.metadata.name);
  else if (tlsMode === 'existing') assertExistingTls(objects, hook, tlsSecretName, values);
  else assertCertManagerTls(objects, mwc, tlsSecretName, values);
}

/**
 * The ValidatingWebhookConfiguration: the six workload kinds, the mode's path, and everything else as the mutating
 * webhook's.
 */
function assertWorkloadCheck(objects: readonly K8sObject[], mwc: Any, values: Any): void {
  const mode: string = values.workloadCheck?.mode ?? 'refuse';
  const vwcs = objects.filter((o) => o.kind === 'ValidatingWebhookConfiguration');
  if (mode === 'off') {
    assert.equal(vwcs.length, 0);
    return;
  }
  const vwc = one(objects, 'ValidatingWebhookConfiguration');
  assert.deepEqual(vwc.metadata.annotations, mwc.metadata.annotations, 'the same CA injection and annotations');
  const [mutating] = mwc.webhooks;
  const sent = new Set<string>();
  for (const hook of vwc.webhooks) {
    assert.equal(hook.sideEffects, 'None');
    assert.deepEqual(hook.admissionReviewVersions, ['v1']);
    assert.equal(hook.failurePolicy, values.workloadCheck?.failurePolicy ?? 'Ignore');
    assert.equal(hook.timeoutSeconds, mutating.timeoutSeconds);
    assert.deepEqual(hook.clientConfig, {
      ...mutating.clientConfig,
      service: { ...mutating.clientConfig.service, path: WORKLOAD_PATHS[mode === 'warn' ? 'warn' : 'refuse'] },
    });
    assert.deepEqual(
      hook.namespaceSelector,
      mutating.namespaceSelector,
      'the same namespace exclusions as the mutating webhook',
    );
    assert.deepEqual(hook.objectSelector, mutating.objectSelector);
    for (const rule of hook.rules) {
      assert.deepEqual([rule.operations, rule.apiVersions, rule.scope], [['CREATE', 'UPDATE'], ['v1'], 'Namespaced']);
      for (const resource of rule.resources) sent.add(`${rule.apiGroups[0]}/${resource}`);
    }
  }
  const checked = Object.entries(CHECKED_WORKLOADS).flatMap(([group, kinds]) =>
    kinds.map((k) => `${group}/${k.toLowerCase()}s`),
  );
  assert.deepEqual([...sent].sort(), checked.sort(), 'exactly the kinds the webhook checks');
}

function assertExistingTls(objects: readonly K8sObject[], hook: Any, secretName: string, values: Any): void {
  assert.equal(objects.filter((o) => o.kind === 'Secret').length, 0, 'the Secret is yours');
  assert.equal(secretName, values.tls.existing.secretName);
  assert.equal(hook.clientConfig.caBundle, values.tls.existing.caBundle);
  assert.ok(new X509Certificate(Buffer.from(hook.clientConfig.caBundle, 'base64')).ca, 'caBundle is a CA certificate');
}

function assertGeneratedTls(objects: readonly K8sObject[], hook: Any, secretName: string, serviceName: string): void {
  const secret = one(objects, 'Secret', secretName);
  assert.equal(secret.type, 'kubernetes.io/tls');
  assert.equal(hook.clientConfig.caBundle, secret.data['ca.crt']);
  const ca = new X509Certificate(Buffer.from(secret.data['ca.crt'], 'base64'));
  const cert = new X509Certificate(Buffer.from(secret.data['tls.crt'], 'base64'));
  assert.ok(ca.ca);
  assert.ok(cert.verify(ca.publicKey), 'the serving certificate is signed by the CA in caBundle');
  for (const c of [ca, cert])
    assert.deepEqual(
      [c.publicKey.asymmetricKeyType, c.publicKey.asymmetricKeyDetails?.namedCurve],
      ['ec', 'prime256v1'],
      'ECDSA P-256 keys (cheaper handshakes than RSA)',
    );
  assert.ok(
    cert.checkHost(`${serviceName}.${NAMESPACE}.svc`),
    'the certificate names the Service DNS name the API server dials',
  );
  assert.equal(one(objects, 'MutatingWebhookConfiguration').metadata.annotations, undefined);
  assert.equal(objects.filter(isCertManager).length, 0);
}

function assertCertManagerTls(objects: readonly K8sObject[], mwc: Any, secretName: string, values: Any): void {
  assert.equal(objects.filter((o) => o.kind === 'Secret').length, 0, 'cert-manager writes the Secret');
  assert.equal(mwc.webhooks[0].clientConfig.caBundle, undefined);
  const certificates = objects.filter((o) => o.kind === 'Certificate') as Any[];
  const serving = certificates.find((c) => c.spec.secretName === secretName);
  assert.equal(mwc.metadata.annotations['cert-manager.io/inject-ca-from'], `${NAMESPACE}/${serving.metadata.name}`);
  assert.ok(serving.spec.dnsNames.includes(`${mwc.webhooks[0].clientConfig.service.name}.${NAMESPACE}.svc`));
  const issuerRef = values.tls.certManager?.issuerRef;
  if (issuerRef === undefined) {
    const issuers = objects.filter((o) => o.kind === 'Issuer') as Any[];
    assert.ok(
      issuers.some((i) => i.metadata.name === serving.spec.issuerRef.name && i.spec.ca !== undefined),
      "signed by the chart's CA Issuer",
    );
    assert.ok(certificates.some((c) => c.spec.isCA === true));
  } else {
    assert.equal(serving.spec.issuerRef.name, issuerRef.name);
    assert.equal(serving.spec.issuerRef.kind, issuerRef.kind);
    assert.equal(objects.filter((o) => o.kind === 'Issuer').length, 0);
  }
}

/** JSON as CEL sees an object in an AdmissionReview: objects are maps, arrays lists. */
function celValue(json: unknown): CelInput {
  if (Array.isArray(json)) return json.map(celValue);
  if (json !== null && typeof json === 'object') return new Map(Object.entries(json).map(([k, v]) => [k, celValue(v)]));
  return json as CelInput;
}

const valueSets = [
  undefined,
  ...readdirSync(CI_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => join(CI_DIR, f)),
];
const valuesArgs = (file: string | undefined): string[] => (file === undefined ? [] : ['--values', file]);

void describe('chart renders with each value set', () => {
  for (const file of valueSets) {
    const label = file === undefined ? 'default values' : basename(file, '.yaml');
    void test(label, async () => {
      const lint = await helm([
        'lint',
        '--strict',
        CHART_DIR,
        '--namespace',
        NAMESPACE,
        '--kube-version',
        KUBE_VERSION,
        ...valuesArgs(file),
      ]);
      assert.equal(lint.status, 0, `helm lint:\n${lint.stdout}${lint.stderr}`);
      const objects = await render(file);
      validate(objects, label);
      assertInvariants(objects, file === undefined ? {} : parseYaml(readFileSync(file, 'utf8')));
    });
  }

  void test('value-specific fields reach the objects', async () => {
    const selected = one(await render(join(CI_DIR, 'namespace-selector-values.yaml')), 'MutatingWebhookConfiguration')
      .webhooks[0];
    assert.deepEqual(selected.namespaceSelector.matchLabels, { 'sidekey.io/enabled': 'true' });
    assert.ok(selected.namespaceSelector.matchExpressions.some((e: Any) => e.key === 'team' && e.operator === 'In'));
    assert.deepEqual(selected.objectSelector, { matchLabels: { 'sidekey.io/inject': 'true' } });
    const production = one(await render(join(CI_DIR, 'production-values.yaml')), 'Deployment').spec.template.spec;
    assert.ok(production.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution !== undefined);
    assert.equal(production.priorityClassName, 'system-cluster-critical');
  });

  void test('parity values reach the objects: host network, extra env, annotations, reinvocation, spreading', async () => {
    const objects = await render(join(CI_DIR, 'parity-values.yaml'));
    const pod = one(objects, 'Deployment').spec.template.spec;
    assert.equal(pod.hostNetwork, true);
    assert.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet', 'in-cluster DNS still works on the host network');
    assert.deepEqual(
      pod.containers[0].ports.map((p: Any) => p.containerPort),
      [10443, 10490],
    );
    assert.deepEqual(
      pod.containers[0].env.map((e: Any) => e.name),
      ['POD_NAMESPACE', 'NODE_EXTRA_CA_CERTS', 'NODE_NAME'],
    );
    assert.equal(pod.topologySpreadConstraints[0].topologyKey, 'topology.kubernetes.io/zone');
    assert.equal(
      one(objects, 'Service').metadata.annotations['service.beta.kubernetes.io/aws-load-balancer-internal'],
      'true',
    );
    assert.deepEqual(one(objects, 'MutatingWebhookConfiguration').metadata.annotations, {
      'policy.example.com/owner': 'platform',
    });
    const certManager = one(await render(join(CI_DIR, 'cert-manager-values.yaml')), 'MutatingWebhookConfiguration')
      .metadata.annotations;
    assert.deepEqual(Object.keys(certManager), ['cert-manager.io/inject-ca-from']);
  });

  void test('OpenShift: null removes the fixed UIDs and keeps the rest of the securityContext', async () => {
    const pod = one(await render(join(CI_DIR, 'openshift-values.yaml')), 'Deployment').spec.template.spec;
    assert.deepEqual(pod.securityContext, { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    assert.equal(pod.containers[0].securityContext.readOnlyRootFilesystem, true);
  });

  void test('the observability kit is off by default and selects what it should when on', async () => {
    const kinds = ['ServiceMonitor', 'PodMonitor', 'PrometheusRule'];
    const defaults = await render();
    assert.deepEqual(
      defaults.filter((o) => kinds.includes(o.kind) || o.metadata.name.endsWith('-dashboard')),
      [],
    );
    const objects = await render(join(CI_DIR, 'monitoring-values.yaml'));
    const service = one(objects, 'Service');
    const serviceMonitor = one(objects, 'ServiceMonitor');
    assert.ok(matchesLabels(serviceMonitor.spec.selector.matchLabels, service.metadata.labels));
    assert.ok(service.spec.ports.some((p: Any) => p.name === serviceMonitor.spec.endpoints[0].port));
    const podMonitor = one(objects, 'PodMonitor');
    assert.deepEqual(podMonitor.spec.selector.matchLabels, { [INJECTED_LABEL]: 'true' });
    assert.equal(podMonitor.spec.podMetricsEndpoints[0].port, AGENT_PORT_NAME);
    assert.deepEqual(podMonitor.spec.namespaceSelector, { any: true });
    for (const kind of kinds) assert.equal(one(objects, kind).metadata.labels.release, 'kube-prometheus-stack', kind);
    const dashboard = one(objects, 'ConfigMap', `${RELEASE}-sidekey-dashboard`);
    assert.equal(dashboard.metadata.namespace, 'monitoring');
    assert.equal(dashboard.metadata.labels.grafana_dashboard, '1');
    assert.equal(JSON.parse(dashboard.data['sidekey.json']).uid, 'sidekey');
  });

  void test('tls.mode existing without its Secret or CA is refused with the value to set', async () => {
    const base = [
      'template',
      RELEASE,
      CHART_DIR,
      '--namespace',
      NAMESPACE,
      '--kube-version',
      KUBE_VERSION,
      '--set',
      'tls.mode=existing',
    ];
    const noSecret = await helm(base);
    assert.notEqual(noSecret.status, 0);
    assert.match(noSecret.stderr, /tls\.mode existing needs tls\.existing\.secretName/);
    const noCa = await helm([...base, '--set', 'tls.existing.secretName=mine']);
    assert.notEqual(noCa.status, 0);
    assert.match(noCa.stderr, /tls\.mode existing needs tls\.existing\.caBundle/);
  });

  void test('matchConditions send exactly the opted-in pods (CEL evaluated as the API server does)', async () => {
    const conditions: { name: string; expression: string }[] = one(await render(), 'MutatingWebhookConfiguration')
      .webhooks[0].matchConditions;
    const sent = (metadata: object): boolean =>
      conditions.every(({ name, expression }) => {
        const result = runCel(expression, {
          object: celValue({ metadata, spec: { containers: [{ name: 'app', image: 'app' }] } }),
        });
        assert.equal(
          typeof result,
          'boolean',
          `${name} must evaluate to a bool, not fail (an error with failurePolicy Fail rejects the pod)`,
        );
        return result === true;
      });
    const cases: [string, object, boolean][] = [
      ['no annotations', {}, false],
      ['empty annotations', { annotations: {} }, false],
      ['other annotations only', { annotations: { 'sidekey.io/secret-db': 'aws:prod/db' } }, false],
      ['inject: "true"', { annotations: { 'sidekey.io/inject': 'true' } }, true],
      ['inject: "false"', { annotations: { 'sidekey.io/inject': 'false' } }, false],
      [
        'inject: "True", which the webhook refuses with the fix rather than let the pod start without secrets',
        { annotations: { 'sidekey.io/inject': 'True' } },
        true,
      ],
      [
        'a mirror pod that opts in',
        { annotations: { 'sidekey.io/inject': 'true', 'kubernetes.io/config.mirror': 'abc' } },
        false,
      ],
    ];
    for (const [label, metadata, expected] of cases) assert.equal(sent(metadata), expected, label);
  });

  void test('matchConditions send the workloads whose template opts in, and UPDATEs that change it (CEL as the API server evaluates it)', async () => {
    const hooks: {
      name: string;
      rules: { resources: string[] }[];
      matchConditions: { name: string; expression: string }[];
    }[] = one(await render(), 'ValidatingWebhookConfiguration').webhooks;
    const hookOf = (kind: string): (typeof hooks)[number] | undefined =>
      hooks.find((h) => h.rules.some((r) => r.resources.includes(`${kind.toLowerCase()}s`)));
    const container = { containers: [{ name: 'app', image: 'app' }] };
    const wrap = (kind: string, template: object | undefined): object =>
      kind === 'CronJob'
        ? { spec: { schedule: '@daily', jobTemplate: template === undefined ? {} : { spec: { template } } } }
        : { spec: { template: template ?? { spec: container } } };
    const sent = (kind: string, object: object, operation = 'CREATE', oldObject: object | null = null): boolean =>
      (hookOf(kind)?.matchConditions ?? []).every(({ name, expression }) => {
        const result = runCel(expression, {
          object: celValue(object),
          oldObject: celValue(oldObject),
          request: celValue({ operation, kind: { kind } }),
        });
        assert.equal(typeof result, 'boolean', `${kind} ${name} must evaluate to a bool, not fail (${typeof result})`);
        return result === true;
      });
    const opted = (inject: string | undefined): object => ({
      metadata: inject === undefined ? {} : { annotations: { 'sidekey.io/inject': inject } },
      spec: container,
    });
    for (const kind of ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob']) {
      assert.ok(hookOf(kind) !== undefined, kind);
      const cases: [string, object, boolean][] = [
        ['no template metadata', wrap(kind, { spec: container }), false],
        ['no annotations', wrap(kind, opted(undefined)), false],
        [
          'other annotations only',
          wrap(kind, { metadata: { annotations: { 'sidekey.io/secret-db': 'aws:prod/db' } }, spec: container }),
          false,
        ],
        ['inject: "true"', wrap(kind, opted('true')), true],
        ['inject: "false"', wrap(kind, opted('false')), false],
        ['inject: "True", refused with the fix as a pod would be', wrap(kind, opted('True')), true],
      ];
      if (kind === 'CronJob') cases.push(['a jobTemplate without spec', wrap(kind, undefined), false]);
      for (const [label, object, expected] of cases) assert.equal(sent(kind, object), expected, `${kind}: ${label}`);
      const before = wrap(kind, opted('true'));
      assert.equal(
        sent(kind, { ...before, metadata: { finalizers: ['foregroundDeletion'] } }, 'UPDATE', before),
        false,
        `${kind}: an UPDATE that keeps the template`,
      );
      assert.equal(
        sent(kind, wrap(kind, opted('yes')), 'UPDATE', before),
        true,
        `${kind}: an UPDATE that changes the template`,
      );
      assert.equal(sent(kind, before, 'UPDATE', wrap(kind, opted(undefined))), true, `${kind}: an UPDATE that opts in`);
    }
  });

  void test('workloadCheck: warn sends to /validate/warn, off installs no ValidatingWebhookConfiguration', async () => {
    const args = ['template', RELEASE, CHART_DIR, '--namespace', NAMESPACE, '--kube-version', KUBE_VERSION];
    const warn = parseObjects(
      (await helm([...args, '--set', 'workloadCheck.mode=warn', '--set', 'workloadCheck.failurePolicy=Fail'])).stdout,
    );
    assertInvariants(warn, { workloadCheck: { mode: 'warn', failurePolicy: 'Fail' } });
    const off = parseObjects((await helm([...args, '--set', 'workloadCheck.mode=off'])).stdout);
    assertInvariants(off, { workloadCheck: { mode: 'off' } });
    const bad = await helm([...args, '--set', 'workloadCheck.mode=deny']);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /workloadCheck\/mode/);
  });

  void test('generated TLS differs between renderings (no fixed key in the chart)', async () => {
    const key = async (): Promise<string> => one(await render(), 'Secret').data['tls.key'];
    assert.notEqual(await key(), await key());
  });
});

void describe('helm install against an API server (server-side dry run)', () => {
  let api: FakeKubeApi;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    api = await startFakeKubeApi(join(scratch, 'kubeconfig'));
    env = {
      ...process.env,
      KUBECONFIG: api.kubeconfig,
      HELM_CACHE_HOME: join(scratch, 'helm-cache'),
      HELM_CONFIG_HOME: join(scratch, 'helm-config'),
      HELM_DATA_HOME: join(scratch, 'helm-data'),
    };
  });
  after(async () => {
    await api.close();
  });

  /** `helm install --dry-run=server`: the manifest and the NOTES as helm prints them. */
  async function install(file?: string): Promise<{ objects: K8sObject[]; notes: string }> {
    const r = await helm(
      [
        'install',
        RELEASE,
        CHART_DIR,
        '--namespace',
        NAMESPACE,
        '--dry-run=server',
        '--disable-openapi-validation',
        ...valuesArgs(file),
      ],
      env,
    );
    assert.equal(r.status, 0, `helm install --dry-run=server:\n${r.stderr}`);
    const manifest = r.stdout.slice(r.stdout.indexOf('MANIFEST:') + 'MANIFEST:'.length, r.stdout.indexOf('NOTES:'));
    return { objects: parseObjects(manifest), notes: r.stdout.slice(r.stdout.indexOf('NOTES:')) };
  }

  void test('NOTES give the first steps, and warn when failing open', async () => {
    const { notes } = await install();
    assert.match(notes, new RegExp(`kubectl -n ${NAMESPACE} rollout status deployment/${RELEASE}-sidekey`));
    assert.match(notes, /sidekey\.io\/inject: "true"/);
    assert.match(notes, /kubectl logs <pod> -c sidekey-agent/);
    assert.match(notes, /sidekey lint -f pod\.yaml/);
    assert.match(notes, /failurePolicy is Fail/);
    assert.match((await install(join(CI_DIR, 'failure-ignore-values.yaml'))).notes, /start WITHOUT\s+their secrets/);
    assert.match(notes, /checked at kubectl apply \(refused with the same message; workloadCheck\.mode\)/);
    assert.match(
      (await install(join(CI_DIR, 'workload-warn-values.yaml'))).notes,
      /checked at kubectl apply \(warnings only;/,
    );
  });

  void test('an upgrade keeps the generated certificate: the chart looks up the existing Secret', async () => {
    const first = await install();
    const secret = one(first.objects, 'Secret');
    // As the first release left it in the cluster (helm's ownership annotations let the next render adopt it).
    const annotations = { 'meta.helm.sh/release-name': RELEASE, 'meta.helm.sh/release-namespace': NAMESPACE };
    api.putSecret({ ...secret, metadata: { ...secret.metadata, namespace: NAMESPACE, annotations } });
    const second = await install();
    assert.deepEqual(one(second.objects, 'Secret').data, secret.data);
    assert.equal(
      one(second.objects, 'MutatingWebhookConfiguration').webhooks[0].clientConfig.caBundle,
      secret.data['ca.crt'],
    );
  });

  for (const file of readdirSync(INVALID_DIR).filter((f) => f.endsWith('.yaml'))) {
    void test(`invalid values are refused with the value named: ${file}`, async () => {
      const valuesFile = join(INVALID_DIR, file);
      const expected = /^# expect: (.+)$/m.exec(readFileSync(valuesFile, 'utf8'))?.[1];
      assert.ok(expected !== undefined, `${file} lacks its "# expect: <helm error>" line`);
      const commands = [
        ['install', RELEASE, '--dry-run=server'],
        ['template', RELEASE, '--kube-version', KUBE_VERSION],
        ['lint'],
      ];
      for (const command of commands) {
        const r = await helm([...command, CHART_DIR, '--namespace', NAMESPACE, '--values', valuesFile], env);
        assert.notEqual(r.status, 0, `helm ${command[0]!} accepted ${file}`);
        assert.ok(
          (r.stdout + r.stderr).includes(expected),
          `helm ${command[0]!} should say: ${expected}\n${r.stdout}${r.stderr}`,
        );
      }
    });
  }
});

void describe('values', () => {
  void test('values.schema.json and the README values table are generated from the current schemas', () => {
    assert.deepEqual(staleChartFiles(), [], 'run: node scripts/chart-values-schema.ts');
  });

  void test("values.yaml config matches the webhook's own defaults", () => {
    const values = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8'));
    const fromValues = chartConfigSchema.parse(values.config);
    const defaults = chartConfigSchema.parse({});
    assert.deepEqual({ ...fromValues, image: { ...fromValues.image, tag: defaults.image.tag } }, defaults);
  });

  void test('appVersion is the package version, and the webhook defaults the agent tag to it', () => {
    const chart = parseYaml(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8'));
    assert.equal(chart.appVersion, PACKAGE_VERSION);
    assert.equal(chartConfigSchema.parse({}).image.tag, PACKAGE_VERSION);
  });
});
