import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from './options.ts';

const file =
  'vault:\n  addr: https://file.example:8200\n  role: from-file\nport: 9443\nimage:\n  repository: registry.example/agent\n';

void describe('configuration sources', () => {
  void it('layers defaults < file < env < flags', () => {
    const loaded = loadConfig({
      flags: {
        config: 'c.yaml',
        'vault-addr': 'https://flag.example:8200',
        'agent-image': 'registry.example/agent:1.2.3',
      },
      env: {
        SIDEKEY_VAULT_ADDR: 'https://env.example:8200',
        SIDEKEY_VAULT_ROLE: 'from-env',
        SIDEKEY_EXCLUDE_NAMESPACES: 'a, b',
        POD_NAMESPACE: 'sidekey',
      },
      readFile: () => file,
    });
    assert.ok(loaded.ok, loaded.ok ? '' : loaded.error);
    const c = loaded.value;
    assert.equal(c.vault.addr, 'https://flag.example:8200');
    assert.equal(c.vault.role, 'from-env');
    assert.equal(c.port, 9443);
    assert.deepEqual(c.image, { repository: 'registry.example/agent', tag: '1.2.3', pullPolicy: 'IfNotPresent' });
    assert.deepEqual(c.excludedNamespaces, ['a', 'b']);
    assert.equal(c.namespace, 'sidekey');
    assert.equal(c.sidecarMode, 'auto');
    assert.ok(Object.isFrozen(c.vault));
  });

  void it('names the bad field and the file', () => {
    const bad = loadConfig({ flags: { port: 'eighty' }, env: {}, readFile: () => '' });
    assert.ok(!bad.ok && bad.error.includes('port'));
    const notMap = loadConfig({ flags: { config: 'c.yaml' }, env: {}, readFile: () => '- a\n' });
    assert.ok(!notMap.ok && notMap.error.startsWith('c.yaml: '));
    const digest = loadConfig({
      flags: { 'agent-image': 'r.example:5000/agent@sha256:abc' },
      env: {},
      readFile: () => '',
    });
    assert.ok(
      digest.ok && digest.value.image.repository === 'r.example:5000/agent' && digest.value.image.tag === 'sha256:abc',
    );
  });

  void it('refuses a Vault address the vault-addr annotation refuses, without repeating it', () => {
    // The address is copied into every injected pod's agent configuration: no credentials, query or fragment.
    for (const [addr, problem] of [
      ['https://agent:s3cret@vault.example:8200', 'must not carry credentials'],
      ['https://vault.example:8200/?token=s3cret', 'must not have a query or fragment'],
      ['ftp://vault.example/s3cret', 'must be an http or https URL'],
    ] as const) {
      const bad = loadConfig({ flags: { 'vault-addr': addr }, env: {}, readFile: () => '' });
      assert.ok(!bad.ok, addr);
      assert.ok(bad.error.includes('vault.addr') && bad.error.includes(problem), bad.error);
      assert.ok(!bad.error.includes('s3cret'), bad.error);
    }
    assert.ok(loadConfig({ flags: { 'vault-addr': 'http://127.0.0.1:8200' }, env: {}, readFile: () => '' }).ok);
  });
});
