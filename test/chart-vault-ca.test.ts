// config.vault.caCert is checked fully by the webhook at start (webhook/options, injector/vault-ca.ts); the
// chart refuses the two mistakes a paste makes, a private key or no certificate at all, at `helm template` and
// `helm install`, by name and without printing the pasted text back (values.schema.json would echo it).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { it } from 'node:test';
import { CHART_DIR } from '../scripts/chart-values-schema.ts';
import { requireTool, TOOLS_DIR } from '../devkit/process.ts';

const HELM = requireTool(join(TOOLS_DIR, 'bin', 'helm'), 'helm');
const KEY_BODY = 'MC4CAQAwBQYDK2VwBCIEIExampleNotARealKeyExampleNotARealKey00';

function template(caCert: string): ReturnType<typeof spawnSync> & { stderr: string; stdout: string } {
  return spawnSync(
    HELM,
    ['template', 'sk', CHART_DIR, '--kube-version', '1.30.0', '--set-string', `config.vault.caCert=${caCert}`],
    { encoding: 'utf8' },
  );
}

void it('helm template refuses a private key or a text without a certificate as config.vault.caCert, naming it', () => {
  const key = template(`-----BEGIN PRIVATE KEY-----\n${KEY_BODY}\n-----END PRIVATE KEY-----\n`);
  assert.notEqual(key.status, 0);
  assert.match(key.stderr, /config\.vault\.caCert holds a private key: give only the CA certificate/);
  assert.ok(!key.stderr.includes(KEY_BODY), 'the key is not printed back');
  const none = template('ca.pem');
  assert.notEqual(none.status, 0);
  assert.match(none.stderr, /config\.vault\.caCert holds no PEM certificate/);
});
