// Helm output with empty lists (`volumeMounts:` with nothing under it is null in YAML): the API server treats a
// null field as absent, and so does the injector. The patch applies to the pod as it came, nulls included.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { applyPatch } from 'rfc6902';
import { parse } from 'yaml';
import { mutatePod } from './mutate.ts';
import { checkPodShape } from './pod-shape.ts';
import { injectionSettingsSchema } from './settings.ts';

const HELM_OUTPUT = `
metadata:
  name: app
  labels:
  annotations:
    sidekey.io/inject: "true"
    sidekey.io/secret-db: "aws:prod/db#password"
spec:
  securityContext:
  initContainers:
  volumes:
  containers:
    - name: app
      image: app
      env:
      ports:
      volumeMounts:
      securityContext:
        runAsUser: 1000
        runAsGroup:
`;

void it('injects a pod whose lists and maps are null, as the API server would read it', () => {
  const pod: unknown = parse(HELM_OUTPUT);
  const result = mutatePod(pod, { settings: injectionSettingsSchema.parse({ aws: { region: 'eu-west-1' } }) });
  if (result.kind !== 'injected')
    assert.fail(result.kind === 'denied' ? result.problems.map((p) => p.message).join('\n') : result.reason);
  const patched = structuredClone(pod) as Record<string, unknown>;
  assert.deepEqual(
    applyPatch(patched, structuredClone(result.patch) as never).filter((e) => e !== null),
    [],
  );
  const shape = checkPodShape(patched);
  assert.ok(shape.ok);
  const [app] = shape.pod.spec.containers;
  assert.deepEqual(
    app?.volumeMounts?.map((m) => m.name),
    ['sidekey-secrets'],
  );
  assert.equal(shape.pod.spec.initContainers?.[0]?.name, 'sidekey-agent');
  assert.equal(result.configs['sidekey-agent']?.fileMode, 0o400, 'the runAsUser under a null runAsGroup is read');
});

void it('still refuses a pod that is wrong for more than its nulls, naming the field', () => {
  const shape = checkPodShape({ spec: { containers: [{ name: 'app', volumeMounts: 'none' }], volumes: null } });
  assert.ok(!shape.ok && shape.problem.includes('volumeMounts'));
});
