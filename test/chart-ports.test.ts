// config.port equal to config.metricsPort: the webhook could not start. values.schema.json checks one value at
// a time (a JSON schema cannot compare two), so the chart's templates refuse the pair, by name.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { it } from 'node:test';
import { CHART_DIR } from '../scripts/chart-values-schema.ts';
import { requireTool, TOOLS_DIR } from '../devkit/process.ts';

const HELM = requireTool(join(TOOLS_DIR, 'bin', 'helm'), 'helm');

void it('helm template refuses config.port equal to config.metricsPort, naming both', () => {
  const r = spawnSync(
    HELM,
    [
      'template',
      'sk',
      CHART_DIR,
      '--kube-version',
      '1.30.0',
      '--set',
      'config.port=9090',
      '--set',
      'config.metricsPort=9090',
    ],
    { encoding: 'utf8' },
  );
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /config\.port and config\.metricsPort must differ/);
});
