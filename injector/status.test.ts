// A pod created with `sidekey.io/status: injected …` is accepted unchanged only when it is exactly what this
// webhook injects for its annotations: a copied injected pod passes, an edited or hand-made one is refused.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { mutatePod } from './mutate.ts';
import type { MutateResult } from './mutate.ts';
import type { Pod } from './pod-shape.ts';
import { injectionSettingsSchema } from './settings.ts';

const options = { settings: injectionSettingsSchema.parse({ aws: { region: 'eu-west-1' } }) };
const pod = {
  metadata: {
    name: 'app',
    annotations: {
      'sidekey.io/inject': 'true',
      'sidekey.io/secret-db': 'aws:prod/db#password',
      'sidekey.io/reload': 'signal:SIGHUP',
    },
  },
  spec: { securityContext: { runAsUser: 1000 }, containers: [{ name: 'app', image: 'app' }] },
};

function injected(input: unknown): Extract<MutateResult, { kind: 'injected' }>['pod'] {
  const result = mutatePod(input, options);
  assert.equal(result.kind, 'injected');
  return result.pod;
}

const codes = (result: MutateResult): readonly string[] =>
  result.kind === 'denied' ? result.problems.map((p) => p.code) : [result.kind];

void it('accepts a copy of an injected pod unchanged, with the defaults the API server adds', () => {
  const copy = structuredClone(injected(pod)) as Pod & { spec: { initContainers: Record<string, unknown>[] } };
  const [agent] = copy.spec.initContainers;
  if (agent !== undefined) agent['terminationMessagePath'] = '/dev/termination-log';
  assert.deepEqual(mutatePod(copy, options), { kind: 'skipped', reason: 'already injected' });
});

void it('refuses a pod whose annotations were edited after injection: the stale agent config would run', () => {
  const copy = structuredClone(injected(pod));
  const annotations = copy.metadata?.annotations ?? {};
  annotations['sidekey.io/secret-db'] = 'aws:prod/other#password';
  const result = mutatePod(copy, options);
  assert.deepEqual(codes(result), ['SK_BAD_STATUS']);
  assert.match(
    result.kind === 'denied' ? (result.problems[0]?.message ?? '') : '',
    /remove sidekey\.io\/status, the sidekey-agent and sidekey-init containers/,
  );
});

void it('refuses a status set by hand, with the right hash but without the agent', () => {
  const status = injected(pod).metadata?.annotations?.['sidekey.io/status'] ?? '';
  const handMade = {
    ...pod,
    metadata: { ...pod.metadata, annotations: { ...pod.metadata.annotations, 'sidekey.io/status': status } },
  };
  assert.deepEqual(codes(mutatePod(handMade, options)), ['SK_BAD_STATUS']);
  assert.deepEqual(
    codes(
      mutatePod(
        { ...handMade, metadata: { annotations: { ...pod.metadata.annotations, 'sidekey.io/status': 'injected' } } },
        options,
      ),
    ),
    ['SK_BAD_STATUS'],
  );
});

void it('refuses a hand-written sidekey-agent under a matching status', () => {
  const copy = structuredClone(injected(pod)) as Pod & { spec: { initContainers: Record<string, unknown>[] } };
  const [agent] = copy.spec.initContainers;
  if (agent !== undefined) agent['image'] = 'attacker/agent:latest';
  assert.deepEqual(codes(mutatePod(copy, options)), ['SK_BAD_STATUS']);
});
