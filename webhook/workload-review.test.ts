// The validating handler for workloads: each kind's template is answered with what /mutate says of a pod made
// from it (the same message, the causes' fields pointing into the template), warn mode, what is not checked,
// malformed and huge objects.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mutateManifest } from '../injector/workloads.ts';
import { tableConfig } from '../test/support/admission-cases.ts';
import { MAX_JSON_VALUES, reviewAdmission, reviewContext } from './review.ts';
import { WORKLOAD_ACTIONS, reviewWorkload } from './workload-review.ts';
import type { WorkloadAction } from './workload-review.ts';
import { defined } from '../injector/defined.ts';
import { podReview } from '../devkit/pod-review.ts';

type Json = Record<string, unknown>;

interface Answer {
  uid: string;
  allowed: boolean;
  patch?: string;
  warnings?: string[];
  status?: { message: string; details: { causes: { reason: string; field: string; message: string }[] } };
}

const ctx = reviewContext(tableConfig());
const GROUPS: Readonly<Record<string, string>> = {
  Deployment: 'apps',
  StatefulSet: 'apps',
  DaemonSet: 'apps',
  ReplicaSet: 'apps',
  Job: 'batch',
  CronJob: 'batch',
};
const KINDS = Object.keys(GROUPS);

const template = (
  annotations: Record<string, string> | undefined,
  spec: Json = { containers: [{ name: 'web', image: 'nginx' }] },
): Json => ({
  metadata: { labels: { app: 'web' }, ...defined({ annotations }) },
  spec,
});

function workload(kind: string, tpl: unknown): Json {
  const spec =
    kind === 'CronJob'
      ? { schedule: '*/5 * * * *', jobTemplate: { spec: { template: tpl } } }
      : { selector: { matchLabels: { app: 'web' } }, template: tpl };
  return { apiVersion: `${GROUPS[kind] ?? 'apps'}/v1`, kind, metadata: { name: 'web', namespace: 'shop' }, spec };
}

interface Request {
  readonly kind?: string;
  readonly group?: string;
  readonly operation?: string;
  readonly namespace?: string;
  readonly subResource?: string;
  readonly oldObject?: unknown;
}

function body(object: unknown, r: Request = {}): string {
  const kind = r.kind ?? 'Deployment';
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'wl-1',
      kind: { group: r.group ?? GROUPS[kind] ?? 'apps', version: 'v1', kind },
      namespace: r.namespace ?? 'shop',
      operation: r.operation ?? 'CREATE',
      ...defined({ subResource: r.subResource }),
      ...defined({ oldObject: r.oldObject }),
      object,
    },
  });
}

function check(
  object: unknown,
  r: Request = {},
  action: WorkloadAction = 'refuse',
): { result: string; detail: string; answer: Answer } {
  const outcome = reviewWorkload(body(object, r), ctx, action);
  assert.equal(outcome.status, 200, JSON.stringify(outcome.body));
  const answer = (outcome.body as { response: Answer }).response;
  assert.equal(answer.uid, 'wl-1');
  assert.equal(answer.patch, undefined, 'a validating answer never patches');
  return { result: outcome.result, detail: outcome.detail, answer };
}

/** What /mutate answers for a pod made from the template. */
function podAnswer(tpl: Json): Answer {
  const review = podReview(tpl, { uid: 'pod-1', namespace: 'shop' });
  return (reviewAdmission(JSON.stringify(review), ctx).body as { response: Answer }).response;
}

const BAD = {
  'sidekey.io/inject': 'true',
  'sidekey.io/secret-db': 'aws:prod/db#password',
  'sidekey.io/aws-region': 'eu-west-1',
  'sidekey.io/refresh': 'soon',
};
const GOOD = {
  'sidekey.io/inject': 'true',
  'sidekey.io/secret-db': 'aws:prod/db#password',
  'sidekey.io/aws-region': 'eu-west-1',
};

void describe('reviewWorkload', () => {
  for (const kind of KINDS) {
    void it(`${kind}: a bad template is refused with pod admission's message, the causes pointing into the template`, () => {
      const { result, detail, answer } = check(workload(kind, template(BAD)), { kind });
      const pod = podAnswer(template(BAD));
      assert.equal(result, 'denied');
      assert.equal(detail, 'SK_BAD_DURATION');
      assert.equal(answer.allowed, false);
      assert.equal(pod.allowed, false);
      assert.equal(answer.status?.message, pod.status?.message);
      assert.match(answer.status?.message ?? '', /^annotation "sidekey\.io\/refresh": /);
      const at = kind === 'CronJob' ? 'spec.jobTemplate.spec.template.' : 'spec.template.';
      assert.deepEqual(
        answer.status?.details.causes.map((c) => [c.reason, c.field]),
        [['SK_BAD_DURATION', `${at}metadata.annotations["sidekey.io/refresh"]`]],
      );
    });

    void it(`${kind}: a good template passes with pod admission's warnings`, () => {
      const { result, answer } = check(workload(kind, template(GOOD)), { kind });
      assert.equal(result, 'passed');
      assert.equal(answer.allowed, true);
      assert.deepEqual(answer.warnings, podAnswer(template(GOOD)).warnings);
    });
  }

  void it('warn mode allows a bad template and says in warnings why its pods will be refused', () => {
    const { result, detail, answer } = check(workload('Deployment', template(BAD)), {}, 'warn');
    assert.equal(result, 'warned');
    assert.equal(detail, 'SK_BAD_DURATION');
    assert.equal(answer.allowed, true);
    assert.equal(answer.status, undefined);
    assert.deepEqual(answer.warnings?.slice(0, 2), [
      'sidekey: the pods of this Deployment will be refused at creation:',
      podAnswer(template(BAD)).status?.message,
    ]);
  });

  void it('lets templates that do not opt in through unchecked', () => {
    const cases: [string, unknown][] = [
      ['no annotations', template(undefined)],
      ['inject "false"', template({ ...BAD, 'sidekey.io/inject': 'false' })],
      ['no metadata', { spec: { containers: [{ name: 'web', image: 'nginx' }] } }],
    ];
    for (const [label, tpl] of cases) {
      const { result, answer } = check(workload('Deployment', tpl));
      assert.equal(result, 'skipped', label);
      assert.equal(answer.allowed, true, label);
    }
  });

  void it('answers malformed objects without throwing: no template is allowed, an opted-in template that is not a pod is refused as a pod would be', () => {
    for (const object of [
      null,
      'text',
      [],
      {},
      { spec: null },
      { spec: { template: 'x' } },
      { spec: { jobTemplate: [] } },
    ]) {
      for (const kind of ['Deployment', 'CronJob']) {
        const { result, answer } = check(object, { kind });
        assert.equal(result, 'skipped', `${kind} ${JSON.stringify(object)}`);
        assert.equal(answer.allowed, true);
      }
    }
    const noContainers = template(GOOD, { containers: 'web' });
    const { result, answer } = check(workload('Deployment', noContainers));
    assert.equal(result, 'denied');
    assert.equal(answer.status?.message, podAnswer(noContainers).status?.message);
    assert.match(answer.status?.message ?? '', /not a valid pod/);
    assert.equal(reviewWorkload('{"apiVersion": 1}', ctx, 'refuse').status, 400);
    assert.equal(reviewWorkload('not json', ctx, 'refuse').status, 400);
  });

  void it('bounds what it answers for a huge template: the message, the causes and the warnings', () => {
    const annotations: Record<string, string> = { 'sidekey.io/inject': 'true' };
    for (let i = 0; i < 2000; i += 1) annotations[`sidekey.io/secret-f${i}`] = `nope${'x'.repeat(200)}`;
    const object = workload('Deployment', template(annotations));
    assert.ok(JSON.stringify(object).length > 400_000);
    const refused = check(object).answer;
    assert.equal(refused.allowed, false);
    assert.ok((refused.status?.message.length ?? 0) <= 8193);
    assert.ok((refused.status?.details.causes.length ?? 0) <= 50);
    const warned = check(object, {}, 'warn').answer;
    assert.equal(warned.allowed, true);
    assert.ok((warned.warnings ?? []).join('').length <= 4096);
    assert.ok((warned.warnings ?? []).every((w) => w.length <= 256));
  });

  void it('lets a workload too large to parse through unread, with a warning: its pods are checked at creation', () => {
    const annotations: Record<string, string> = { 'sidekey.io/inject': 'true', 'sidekey.io/secret-f': 'nope' };
    for (let i = 0; i < MAX_JSON_VALUES; i += 1) annotations[`a${i}`] = '';
    for (const action of WORKLOAD_ACTIONS) {
      const { result, answer } = check(workload('Deployment', template(annotations)), {}, action);
      assert.equal(result, 'skipped');
      assert.equal(answer.allowed, true);
      assert.match(answer.warnings?.[0] ?? '', /did not check this workload: it holds more than 20000 JSON values/);
    }
    const noUid = reviewWorkload(
      JSON.stringify({ request: { object: workload('Deployment', template(annotations)) } }),
      ctx,
      'refuse',
    );
    assert.equal(noUid.status, 400);
  });

  void it('checks an UPDATE only when it changes the template, so controllers can still update old workloads', () => {
    const bad = workload('ReplicaSet', template(BAD));
    const scaled = {
      ...bad,
      spec: { ...(bad['spec'] as Json), replicas: 0 },
      metadata: { name: 'web', finalizers: ['foregroundDeletion'] },
    };
    assert.equal(check(scaled, { kind: 'ReplicaSet', operation: 'UPDATE', oldObject: bad }).result, 'skipped');
    const good = workload('ReplicaSet', template(GOOD));
    assert.equal(check(bad, { kind: 'ReplicaSet', operation: 'UPDATE', oldObject: good }).result, 'denied');
    assert.equal(check(bad, { kind: 'ReplicaSet', operation: 'UPDATE' }).result, 'denied', 'no oldObject: checked');
    const cron = workload('CronJob', template(BAD));
    assert.equal(
      check(cron, { kind: 'CronJob', operation: 'UPDATE', oldObject: workload('CronJob', template(GOOD)) }).result,
      'denied',
    );
  });

  void it('skips what it does not check: excluded namespaces, other operations, subresources and other kinds (with a warning)', () => {
    const bad = workload('Deployment', template(BAD));
    for (const namespace of ['kube-system', 'sidekey-system', 'legacy'])
      assert.equal(check(bad, { namespace }).detail, 'excluded namespace');
    assert.equal(check(bad, { operation: 'DELETE' }).result, 'skipped');
    const other = [
      { kind: 'Pod', group: '' },
      { kind: 'Deployment', group: 'extensions' },
      { kind: 'Deployment', subResource: 'scale' },
      { kind: 'constructor', group: 'apps' },
    ];
    for (const r of other) {
      const { result, answer } = check(bad, r);
      assert.equal(result, 'skipped', JSON.stringify(r));
      assert.match(answer.warnings?.[0] ?? '', /check the webhook rules/);
    }
  });

  void it('accepts a template rendered by sidekey render (it carries the injection and its status annotation)', () => {
    const rendered = mutateManifest(workload('Deployment', template(GOOD)), ctx);
    assert.equal(rendered.kind, 'mutated');
    const { result, detail } = check(rendered.manifest);
    assert.equal(result, 'skipped');
    assert.equal(detail, 'already injected');
  });

  void it('only warns about a missing AWS region, which an identity webhook may add to the pods at their creation', () => {
    const noRegion = { 'sidekey.io/inject': 'true', 'sidekey.io/secret-db': 'aws:prod/db#password' };
    assert.equal(podAnswer(template(noRegion)).allowed, false, 'a pod without a region is refused');
    const { result, answer } = check(workload('Deployment', template(noRegion)));
    assert.equal(result, 'passed');
    assert.equal(answer.allowed, true);
    assert.ok(
      answer.warnings?.some(
        (w) =>
          w.startsWith('annotation "sidekey.io/aws-region": no AWS region') &&
          w.includes('unless a webhook adds AWS_REGION'),
      ),
      String(answer.warnings),
    );
    const alsoBad = check(workload('Deployment', template({ ...noRegion, 'sidekey.io/containers': 'nope' }))).answer;
    assert.equal(alsoBad.allowed, false);
    assert.deepEqual(
      alsoBad.status?.details.causes.map((c) => c.reason),
      ['SK_UNKNOWN_CONTAINER'],
    );
  });
});
