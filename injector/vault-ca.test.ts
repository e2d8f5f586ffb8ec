// The Vault CA and the agents' proxy in the webhook configuration: refused at start with the fix when unusable
// (checked against real certificates and keys from openssl), carried into the agent exactly when usable.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createTestCa } from '../test/support/test-ca.ts';
import { loadConfig } from '../webhook/options.ts';
import { parseAgentConfig } from './agent-config.ts';
import { CONFIG_ENV } from './constants.ts';
import { mutatePod } from './mutate.ts';
import { injectionSettingsSchema } from './settings.ts';
import { MAX_CA_PEM_BYTES, caPemProblem, parseCaObject } from './vault-ca.ts';

const ca = createTestCa();
after(() => {
  ca.dispose();
});
const leaf = ca.issue('vault.example');

function configError(yaml: string): string {
  const loaded = loadConfig({ flags: { config: 'values.yaml' }, env: {}, readFile: () => yaml });
  assert.ok(!loaded.ok, 'refused');
  return loaded.error;
}

const indent = (pem: string): string =>
  pem
    .trimEnd()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');

void describe('vault.caCert', () => {
  void it('accepts a CA bundle and carries it into the agent configuration of an https Vault pod', () => {
    const loaded = loadConfig({
      flags: { config: 'values.yaml' },
      env: {},
      readFile: () =>
        `vault:\n  addr: https://vault.example:8200\n  role: app\n  caCert: |\n${indent(ca.caCert + ca.caCert)}\n`,
    });
    assert.ok(loaded.ok, loaded.ok ? '' : loaded.error);
    const pod = {
      metadata: {
        name: 'p',
        annotations: { 'sidekey.io/inject': 'true', 'sidekey.io/secret-db': 'vault:kv/db#password' },
      },
      spec: { securityContext: { runAsUser: 1000 }, containers: [{ name: 'app', image: 'app' }] },
    };
    const result = mutatePod(pod, { settings: injectionSettingsSchema.parse({ vault: loaded.value.vault }) });
    if (result.kind !== 'injected') throw new Error(`not injected: ${JSON.stringify(result)}`);
    const env = JSON.stringify(result.pod);
    const agent = result.pod.spec.initContainers?.find((c) => c.name === 'sidekey-agent');
    const text = agent?.env?.find((e) => e.name === CONFIG_ENV)?.['value'];
    const config = parseAgentConfig(typeof text === 'string' ? text : '');
    assert.ok(config.ok, config.ok ? '' : config.error);
    assert.equal(config.value.vault?.caCert, loaded.value.vault.caCert);
    assert.equal(config.value.vault?.caFile, undefined);
    assert.ok(!env.includes('sidekey-vault-ca'), 'no volume: the PEM travels in the configuration');
  });

  void it('refuses what is not a CA bundle, naming the field and the fix, never echoing the text', () => {
    // Drop a whole 64-character line from the middle: still base64, no longer DER (the last line can be short).
    const lines = ca.caCert.trimEnd().split('\n');
    lines.splice(Math.floor(lines.length / 2), 1);
    const truncated = `${lines.join('\n')}\n`;
    for (const [pem, expected] of [
      ['not a certificate', 'vault.caCert holds no PEM certificate'],
      [leaf.key, 'PEM block 1 is a private key: remove it'],
      [`${ca.caCert}${leaf.key}`, 'PEM block 2 is a private key'],
      [leaf.cert, 'is not a CA certificate (basicConstraints CA:FALSE'],
      [truncated, 'is not a readable X.509 certificate'],
      [ca.caCert.repeat(Math.ceil(MAX_CA_PEM_BYTES / ca.caCert.length) + 1), `over the ${MAX_CA_PEM_BYTES / 1024} KiB`],
    ] as const) {
      const error = configError(`vault:\n  caCert: |\n${indent(pem)}\n`);
      assert.ok(error.includes('vault.caCert') && error.includes(expected), error);
      const bodyLines = pem.split('\n').filter((l) => /^[A-Za-z0-9+/=]{16,}$/.test(l));
      assert.ok(
        bodyLines.every((l) => !error.includes(l)),
        'the PEM is never repeated',
      );
    }
  });

  void it('refuses a CA given twice or a caFrom naming neither or both objects', () => {
    assert.match(
      configError(`vault:\n  caFrom: {configMap: a}\n  caCert: |\n${indent(ca.caCert)}\n`),
      /give vault.caCert or vault.caFrom, not both/,
    );
    assert.match(configError('vault:\n  caFrom: {key: ca.crt}\n'), /give exactly one of configMap or secret/);
    assert.match(
      configError('vault:\n  caFrom: {configMap: a, secret: b}\n'),
      /give exactly one of configMap or secret/,
    );
    assert.match(configError('vault:\n  caFrom: {configMap: Corp_CA}\n'), /must be a ConfigMap name/);
  });

  void it('checks the same PEM rules the agent applies to a mounted CA file', () => {
    assert.equal(caPemProblem(ca.caCert, 'x'), undefined);
    assert.match(
      caPemProblem(leaf.cert, 'the CA file /sidekey/vault-ca/ca.crt') ?? '',
      /^the CA file \/sidekey\/vault-ca\/ca.crt, PEM block 1 is not a CA certificate/,
    );
  });

  void it('reads the sidekey.io/vault-ca grammar', () => {
    assert.deepEqual(parseCaObject('configmap:corp-ca'), {
      ok: true,
      ca: { kind: 'configMap', name: 'corp-ca', key: 'ca.crt' },
    });
    assert.deepEqual(parseCaObject('secret:vault-tls#tls.ca'), {
      ok: true,
      ca: { kind: 'secret', name: 'vault-tls', key: 'tls.ca' },
    });
    assert.ok(!parseCaObject('configmap:').ok);
    assert.ok(!parseCaObject('ConfigMap:corp-ca').ok);
  });
});

void describe('proxy', () => {
  void it('refuses proxy URLs with credentials and NO_PROXY entries Node would not match', () => {
    const creds = configError('proxy:\n  httpsProxy: http://agent:s3cret@proxy.corp:3128\n');
    assert.match(creds, /proxy.httpsProxy/);
    assert.match(creds, /without credentials/);
    assert.ok(!creds.includes('s3cret'), creds);
    assert.match(
      configError('proxy:\n  noProxy: [10.0.0.0/8]\n'),
      /"10.0.0.0\/8" is a CIDR range, which the agent's HTTP client \(Node\) does not match/,
    );
    assert.match(configError('proxy:\n  noProxy: ["vault.*"]\n'), /must be \*, a host or IP, or .domain/);
    assert.match(
      configError('proxy:\n  noProxy: ["[::1]:8200"]\n'),
      /"\[::1\]:8200" has brackets, which the agent's HTTP client \(Node\) does not match: write the IPv6 address bare/,
    );
    const ok = loadConfig({
      flags: { config: 'v.yaml' },
      env: {},
      readFile: () => 'proxy:\n  httpProxy: http://proxy.corp:3128\n  noProxy: ["*.svc", "::1", "10.0.0.7"]\n',
    });
    assert.ok(ok.ok, ok.ok ? '' : ok.error);
  });
});
