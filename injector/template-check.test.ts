// Finding a workload's pod template and checking it with mutatePod's rules.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tableConfig } from '../test/support/admission-cases.ts';
import { CHECKED_WORKLOADS, checkTemplate, isCheckedWorkload } from './template-check.ts';
import { findTemplate } from './workloads.ts';

const options = { settings: tableConfig() };
const tpl = {
  metadata: {
    annotations: {
      'sidekey.io/inject': 'true',
      'sidekey.io/secret-db': 'aws:prod/db',
      'sidekey.io/aws-region': 'eu-west-1',
    },
  },
  spec: { containers: [{ name: 'a', image: 'a' }] },
};

void describe('findTemplate', () => {
  void it('finds spec.template, and spec.jobTemplate.spec.template of a CronJob', () => {
    for (const kind of CHECKED_WORKLOADS['apps'] ?? [])
      assert.equal(findTemplate({ spec: { template: tpl } }, kind)?.template, tpl, kind);
    assert.equal(findTemplate({ spec: { template: tpl } }, 'Job')?.template, tpl);
    assert.equal(findTemplate({ spec: { jobTemplate: { spec: { template: tpl } } } }, 'CronJob')?.template, tpl);
    assert.equal(findTemplate({ spec: { template: tpl } }, 'CronJob'), undefined);
  });

  void it('finds nothing for other kinds, inherited property names or a path that breaks off', () => {
    for (const kind of ['Pod', 'Service', 'constructor', '__proto__', 'toString'])
      assert.equal(findTemplate({ spec: { template: tpl } }, kind), undefined, kind);
    for (const workload of [null, 1, 'x', [], { spec: [] }, { spec: { jobTemplate: null } }])
      assert.equal(findTemplate(workload, 'CronJob'), undefined);
  });
});

void describe('checkTemplate', () => {
  void it('checks the six workload kinds of apps/v1 and batch/v1 only', () => {
    assert.ok(isCheckedWorkload('apps', 'StatefulSet') && isCheckedWorkload('batch', 'CronJob'));
    assert.ok(
      !isCheckedWorkload('', 'ReplicationController') &&
        !isCheckedWorkload('batch', 'Deployment') &&
        !isCheckedWorkload('constructor', 'Job'),
    );
  });

  void it('passes, refuses or skips a template as mutatePod does a pod', () => {
    assert.equal(checkTemplate('Job', { spec: { template: tpl } }, options).kind, 'passed');
    const bad = { ...tpl, metadata: { annotations: { ...tpl.metadata.annotations, 'sidekey.io/mode': 'sidecars' } } };
    const denied = checkTemplate('CronJob', { spec: { jobTemplate: { spec: { template: bad } } } }, options);
    assert.equal(denied.kind, 'denied');
    assert.equal(denied.at, 'spec.jobTemplate.spec.template.');
    assert.deepEqual(checkTemplate('Deployment', { spec: { template: { spec: {} } } }, options), {
      kind: 'skipped',
      reason: 'not opted in',
    });
    assert.deepEqual(checkTemplate('Deployment', { spec: { template: 7 } }, options), {
      kind: 'skipped',
      reason: 'no pod template',
    });
    const malformed = { metadata: { annotations: { 'sidekey.io/inject': 'true' } }, spec: {} };
    assert.match(
      JSON.stringify(checkTemplate('Deployment', { spec: { template: malformed } }, options)),
      /SK_NOT_A_POD/,
      'opted in: refused as a pod would be',
    );
  });
});
