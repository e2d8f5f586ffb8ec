// What one admission checks is bounded, so any review the API server can send (3 MiB) is cheap to refuse:
// the problems listed, the sidekey.io annotations read, the files and the containers that get the mount.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MAX_PROBLEMS } from './annotation-spec.ts';
import { MAX_OWN_ANNOTATIONS, MAX_TARGETS } from './annotations.ts';
import { mutatePod } from './mutate.ts';
import type { MutateResult } from './mutate.ts';
import { formatProblem } from './problems.ts';
import { injectionSettingsSchema } from './settings.ts';

const options = { settings: injectionSettingsSchema.parse({ aws: { region: 'eu-west-1' } }) };
const base = { 'sidekey.io/inject': 'true', 'sidekey.io/secret-db': 'aws:prod/db#password' };

function problems(result: MutateResult): string[] {
  if (result.kind !== 'denied') assert.fail(`expected a refusal, got ${result.kind}`);
  return result.problems.map((p) => `${p.code} ${formatProblem(p)}`);
}

const unknownKeys = (n: number): Record<string, string> =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`sidekey.io/${i.toString(36).padStart(40, '-')}`, 'x']));

void it(`lists at most ${MAX_PROBLEMS} problems and says that the rest was not checked`, () => {
  const listed = problems(
    mutatePod(
      { metadata: { annotations: { ...base, ...unknownKeys(100) } }, spec: { containers: [{ name: 'app' }] } },
      options,
    ),
  );
  assert.equal(listed.length, MAX_PROBLEMS + 1);
  assert.match(listed.at(-1) ?? '', new RegExp(`^SK_TOO_MANY pod: only the first ${MAX_PROBLEMS} problems are listed`));
});

void it('refuses 39,000 unknown 40-character keys with one problem naming the count and the limit', () => {
  const listed = problems(
    mutatePod(
      { metadata: { annotations: { ...base, ...unknownKeys(39_000) } }, spec: { containers: [{ name: 'app' }] } },
      options,
    ),
  );
  assert.deepEqual(listed, [
    `SK_TOO_MANY pod: the pod has 39002 sidekey.io/ annotations; at most ${MAX_OWN_ANNOTATIONS} are read (500 files)`,
  ]);
});

void it(`mounts the files into at most ${MAX_TARGETS} containers`, () => {
  const containers = Array.from({ length: 40_000 }, (_, i) => ({ name: `c${i}` }));
  const named = { ...base, 'sidekey.io/containers': containers.map((c) => c.name).join(',') };
  assert.deepEqual(problems(mutatePod({ metadata: { annotations: named }, spec: { containers } }, options)), [
    `SK_TOO_MANY annotation "sidekey.io/containers": lists more than ${MAX_TARGETS} containers; at most ${MAX_TARGETS} get the mount; example: sidekey.io/containers: "app,worker"`,
  ]);
  const all = problems(
    mutatePod({ metadata: { annotations: base }, spec: { containers: containers.slice(0, MAX_TARGETS + 1) } }, options),
  );
  assert.match(
    all.join('\n'),
    new RegExp(`^SK_TOO_MANY pod: all ${MAX_TARGETS + 1} containers would get the mount, at most ${MAX_TARGETS} can`),
  );
  const some = { ...base, 'sidekey.io/containers': 'c1,c39999' };
  assert.equal(mutatePod({ metadata: { annotations: some }, spec: { containers } }, options).kind, 'injected');
});

void it('refuses more files than the agent writes', () => {
  const files = Object.fromEntries(Array.from({ length: 501 }, (_, i) => [`sidekey.io/secret-f${i}`, 'aws:prod/db']));
  assert.deepEqual(
    problems(
      mutatePod({ metadata: { annotations: { ...base, ...files } }, spec: { containers: [{ name: 'app' }] } }, options),
    ),
    [
      'SK_TOO_MANY pod: the pod names 502 files (secret-, template-, format-, refresh-<name>); the agent writes at most 500',
    ],
  );
});
