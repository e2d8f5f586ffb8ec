// `sidekey migrate` on a table of vault-k8s annotation sets in the forms vault-k8s documents: each translated
// manifest passes `sidekey render` (the same code path, in process) with no problem, and where a secret is read
// the real agent, run on the translated configuration against a real OpenBao, writes the file the original
// template would have written (its output worked out by hand below: there is no consul-template here). For
// certificates, issued by OpenBao's pki engine, the files hold one issue (the key matches the certificate, the
// names are those asked) laid out byte for byte as the vault-k8s templates would lay out that issue.
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseEnv } from 'node:util';
import type { TestContext } from 'node:test';
import { parse, parseAllDocuments, stringify } from 'yaml';
import type { AgentConfig } from '../injector/agent-config.ts';
import { startAgent } from '../agent/testdata/agent-process.ts';
import { READ_ALL_POLICY, startOpenBao } from '../devkit/backends/openbao.ts';
import type { KubernetesAuth, OpenBaoHandle } from '../devkit/backends/openbao.ts';
import type { ManifestIo } from './manifests.ts';
import { run as migrate } from './migrate.ts';
import { translateTemplate } from './migrate-template.ts';
import { render } from './render.ts';

const PASSWORD = 'pw-migrate-5c1e';
const API_KEY = 'key-migrate-93ab';
const SECRETS = [PASSWORD, API_KEY];
const DB = { password: PASSWORD, username: 'app' };

/** What OpenBao holds for the table: KV v2 at secret/, KV v1 at kv1/. */
const STORE: readonly { readonly mount: 'secret' | 'kv1'; readonly key: string; readonly data: object }[] = [
  { mount: 'secret', key: 'app/db', data: DB },
  { mount: 'secret', key: 'app/api', data: { 'api-key': API_KEY } },
  { mount: 'kv1', key: 'app/db', data: DB },
];

/** How the agent's file is compared with vault-k8s's: the same bytes, or the same variables for an env reader. */
type Compare = 'bytes' | 'env';

/** The PEMs of one issue: the certificate, its key and the issuing CA, as Vault returns them (no final newline). */
interface Issue {
  readonly certificate: string;
  readonly key: string;
  readonly ca: string;
}

/** The role the certificate rows issue from (OpenBao's pki engine at pki/, a role limited to svc.test). */
const PKI_ROLE = { role: 'web', allowedDomains: ['svc.test'], maxTtl: '1h' } as const;
const ISSUE = 'pki/issue/web';
const CERT_QUERY = 'alt_names=api.svc.test&common_name=web.svc.test&ip_sans=10.0.0.7&ttl=10m';
/** The same parameters in the order a vault-k8s template gave them. */
const CERT_ARGS = '"ttl=10m" "common_name=web.svc.test" "alt_names=api.svc.test" "ip_sans=10.0.0.7"';
/** The names they ask for: the common name, and the SANs as node:crypto lists them. */
const CERT_NAMES = {
  commonName: 'web.svc.test',
  sans: ['DNS:api.svc.test', 'DNS:web.svc.test', 'IP Address:10.0.0.7'],
} as const;

interface Row {
  readonly name: string;
  /** vault.hashicorp.com/ annotations (without the prefix) besides agent-inject: "true" and role: app. */
  readonly vault: Readonly<Record<string, string>>;
  /** The sidekey.io/ annotations (without the prefix) the translation adds besides inject, vault-role, mount-path. */
  readonly sidekey: Readonly<Record<string, string>>;
  /** vault-k8s annotations left untranslated. */
  readonly left?: readonly string[];
  /** The file the agent writes and what vault-k8s wrote there for STORE. */
  readonly backend?: { readonly file: string; readonly vaultK8s: string; readonly compare: Compare };
  /** For a certificate issued from PKI_ROLE with CERT_ARGS: what vault-k8s wrote per file for one issue. */
  readonly certificate?: (issue: Issue) => Readonly<Record<string, string>>;
  /** What the report on stderr says (reasons, notes). */
  readonly report?: readonly RegExp[];
}

const TABLE: readonly Row[] = [
  {
    name: 'dynamic database credentials in a connection string',
    vault: {
      'agent-inject-secret-db-creds': 'database/creds/db-app',
      'agent-inject-template-db-creds':
        '{{- with secret "database/creds/db-app" -}}\npostgres://{{ .Data.username }}:{{ .Data.password }}@postgres:5432/appdb?sslmode=disable\n{{- end }}\n',
    },
    sidekey: {
      'secret-db-creds': 'vault:database/creds/db-app',
      'template-db-creds': 'postgres://{{ .username }}:{{ .password }}@postgres:5432/appdb?sslmode=disable\n',
    },
  },
  {
    name: 'KV v2 field reads in a connection string',
    vault: {
      'agent-inject-secret-db-url': 'secret/data/app/db',
      'agent-inject-template-db-url':
        '{{- with secret "secret/data/app/db" -}}\npostgresql://{{ .Data.data.username }}:{{ .Data.data.password }}@postgres:5432/wizard\n{{- end -}}\n',
    },
    sidekey: {
      'secret-db-url': 'vault:secret/app/db',
      'template-db-url': 'postgresql://{{ .username }}:{{ .password }}@postgres:5432/wizard',
    },
    backend: { file: 'db-url', vaultK8s: `postgresql://app:${PASSWORD}@postgres:5432/wizard`, compare: 'bytes' },
  },
  {
    name: 'KV v1 field reads on lines',
    vault: {
      'agent-inject-secret-db': 'kv1/app/db',
      'agent-inject-template-db':
        '{{ with secret "kv1/app/db" -}}\nuser={{ .Data.username }}\npass={{ .Data.password }}\n{{- end }}\n',
    },
    sidekey: { 'secret-db': 'vault:kv1/app/db', 'template-db': 'user={{ .username }}\npass={{ .password }}\n' },
    backend: { file: 'db', vaultK8s: `user=app\npass=${PASSWORD}\n`, compare: 'bytes' },
  },
  {
    name: 'one KV v2 field alone',
    vault: {
      'agent-inject-secret-password': 'secret/data/app/db',
      'agent-inject-template-password':
        '{{- with secret "secret/data/app/db" -}}\n{{ .Data.data.password }}\n{{- end }}',
    },
    sidekey: { 'secret-password': 'vault:secret/app/db#password' },
    backend: { file: 'password', vaultK8s: PASSWORD, compare: 'bytes' },
  },
  {
    name: 'index of a field with a dash',
    vault: {
      'agent-inject-secret-api-key': 'secret/data/app/api',
      'agent-inject-template-api-key':
        '{{ with secret "secret/data/app/api" }}{{ index .Data.data "api-key" }}{{ end }}',
    },
    sidekey: { 'secret-api-key': 'vault:secret/app/api#api-key' },
    backend: { file: 'api-key', vaultK8s: API_KEY, compare: 'bytes' },
  },
  {
    name: 'the KV v2 data as JSON',
    vault: {
      'agent-inject-secret-db.json': 'secret/data/app/db',
      'agent-inject-template-db.json': '{{ with secret "secret/data/app/db" }}{{ .Data.data | toJSON }}{{ end }}',
    },
    sidekey: { 'secret-db.json': 'vault:secret/app/db', 'template-db.json': '{{ . }}' },
    backend: { file: 'db.json', vaultK8s: JSON.stringify(DB), compare: 'bytes' },
  },
  {
    name: 'range over KV v2 data to export lines',
    vault: {
      'agent-inject-secret-config': 'secret/data/app/db',
      'agent-inject-template-config':
        '{{- with secret "secret/data/app/db" -}}\n{{- range $k, $v := .Data.data }}\nexport {{ $k }}="{{ $v }}"\n{{- end }}\n{{- end }}\n',
    },
    sidekey: { 'secret-config': 'vault:secret/app/db', 'format-config': 'env' },
    backend: { file: 'config', vaultK8s: `\nexport password="${PASSWORD}"\nexport username="app"`, compare: 'env' },
  },
  {
    name: 'range over KV v1 data to KEY=VALUE lines',
    vault: {
      'agent-inject-secret-app.env': 'kv1/app/db',
      'agent-inject-template-app.env':
        '{{ with secret "kv1/app/db" }}{{ range $key, $value := .Data }}{{ $key }}={{ $value }}\n{{ end }}{{ end }}',
    },
    sidekey: { 'secret-app.env': 'vault:kv1/app/db', 'format-app.env': 'env' },
    backend: { file: 'app.env', vaultK8s: `password=${PASSWORD}\nusername=app\n`, compare: 'bytes' },
  },
  {
    name: 'range to a properties file',
    vault: {
      'agent-inject-secret-app.properties': 'secret/data/app/db',
      'agent-inject-template-app.properties':
        '{{ with secret "secret/data/app/db" }}{{ range $k, $v := .Data.data }}{{ $k }}={{ $v }}\n{{ end }}{{ end }}',
    },
    sidekey: { 'secret-app.properties': 'vault:secret/app/db', 'format-app.properties': 'properties' },
    backend: { file: 'app.properties', vaultK8s: `password=${PASSWORD}\nusername=app\n`, compare: 'bytes' },
  },
  {
    name: 'a bare KV v1 secret (the default map template)',
    vault: { 'agent-inject-secret-db.yaml': 'kv1/app/db' },
    sidekey: { 'secret-db.yaml': 'vault:kv1/app/db', 'format-db.yaml': 'yaml' },
    backend: { file: 'db.yaml', vaultK8s: `password: ${PASSWORD}\nusername: app\n`, compare: 'bytes' },
  },
  {
    name: 'a bare KV v1 secret with the json default template',
    vault: { 'agent-inject-secret-db': 'kv1/app/db', 'agent-inject-default-template': 'json' },
    sidekey: { 'secret-db': 'vault:kv1/app/db', 'format-db': 'raw' },
    backend: { file: 'db', vaultK8s: `${JSON.stringify(DB)}\n`, compare: 'bytes' },
  },
  {
    // vault-k8s writes Go maps of data and metadata here (`data: map[password:… username:app]`); Sidekey writes
    // the fields, and says so in a note.
    name: 'a bare KV v2 secret (content changes, noted)',
    vault: { 'agent-inject-secret-config': 'secret/data/app/db' },
    sidekey: { 'secret-config': 'vault:secret/app/db', 'format-config': 'yaml' },
  },
  {
    name: 'file name and permissions',
    vault: {
      'agent-inject-secret-db': 'secret/data/app/db',
      'agent-inject-template-db': '{{ with secret "secret/data/app/db" }}{{ .Data.data.password }}{{ end }}',
      'agent-inject-file-db': 'db-password.txt',
      'agent-inject-perms-db': '0440',
    },
    sidekey: { 'secret-db-password.txt': 'vault:secret/app/db#password', 'file-mode': '0440' },
    backend: { file: 'db-password.txt', vaultK8s: PASSWORD, compare: 'bytes' },
  },
  {
    name: 'pre-populate only (Jobs)',
    vault: {
      'agent-pre-populate-only': 'true',
      'agent-inject-secret-password': 'secret/data/app/db',
      'agent-inject-template-password': '{{ with secret "secret/data/app/db" }}{{ .Data.data.password }}{{ end }}',
    },
    sidekey: { 'secret-password': 'vault:secret/app/db#password', mode: 'init-only' },
  },
  {
    name: 'auth path, namespace, address, log level, resources and the mount path',
    vault: {
      'agent-inject-secret-db': 'kv1/app/db',
      'auth-path': 'auth/k8s-prod',
      'auth-type': 'kubernetes',
      namespace: 'team-a',
      service: 'https://vault.vault.svc:8200',
      'log-level': 'trace',
      'agent-requests-cpu': '20m',
      'agent-requests-mem': '64Mi',
      'agent-limits-mem': '128Mi',
      'agent-init-first': 'true',
      'secret-volume-path': '/etc/app/secrets',
      'agent-inject-containers': 'app',
      'template-static-secret-render-interval': '5m',
    },
    sidekey: {
      'secret-db': 'vault:kv1/app/db',
      'format-db': 'yaml',
      'vault-auth-path': 'k8s-prod',
      'vault-auth': 'kubernetes',
      'vault-namespace': 'team-a',
      'vault-addr': 'https://vault.vault.svc:8200',
      'log-level': 'debug',
      'agent-cpu': '20m',
      'agent-memory': '64Mi',
      'mount-path': '/etc/app/secrets',
      containers: 'app',
      refresh: '5m',
    },
  },
  {
    name: 'the Vault CA from tls-secret and ca-cert',
    vault: {
      'agent-inject-secret-db': 'kv1/app/db',
      'tls-secret': 'vault-tls',
      'ca-cert': '/vault/tls/ca.crt',
    },
    sidekey: { 'secret-db': 'vault:kv1/app/db', 'format-db': 'yaml', 'vault-ca': 'secret:vault-tls#ca.crt' },
  },
  {
    name: 'a command and skip-verify are left, the file is translated',
    vault: {
      'agent-inject-secret-password': 'secret/data/app/db',
      'agent-inject-template-password': '{{ with secret "secret/data/app/db" }}{{ .Data.data.password }}{{ end }}',
      'agent-inject-command-password': 'kill -HUP $(pidof app)',
      'tls-skip-verify': 'true',
    },
    sidekey: { 'secret-password': 'vault:secret/app/db#password' },
    left: ['agent-inject-command-password', 'tls-skip-verify'],
  },
  {
    name: 'a PKI certificate and its key in one file (pkiCert)',
    vault: {
      'agent-inject-secret-cert': ISSUE,
      'agent-inject-template-cert': `{{- with pkiCert "${ISSUE}" ${CERT_ARGS} -}}\n{{ .Cert }}{{ .Key }}\n{{- end }}`,
    },
    sidekey: {
      'secret-cert': `vault:${ISSUE}?${CERT_QUERY}`,
      'template-cert': '{{ .certificate }}\n{{ .private_key }}\n',
    },
    // pkiCert writes each PEM with a newline after it.
    certificate: ({ certificate, key }) => ({ cert: `${certificate}\n${key}\n` }),
    report: [/agent-inject-template-cert: note: pkiCert re-issued at about 90% of the lifetime; Sidekey re-issues/],
  },
  {
    name: 'a PKI certificate (with secret on pki/issue)',
    vault: {
      'agent-inject-secret-tls.crt': ISSUE,
      'agent-inject-template-tls.crt':
        '{{- with secret "pki/issue/web" "common_name=web.example.com" -}}\n{{ .Data.certificate }}\n{{- end }}',
    },
    sidekey: { 'secret-tls.crt': 'vault:pki/issue/web?common_name=web.example.com#certificate' },
  },
  {
    name: 'a certificate, its key and its CA chain from three templates share one issue',
    vault: {
      'agent-inject-secret-tls.crt': ISSUE,
      'agent-inject-template-tls.crt': `{{- with secret "${ISSUE}" ${CERT_ARGS} -}}\n{{ .Data.certificate }}\n{{- end }}`,
      'agent-inject-secret-tls.key': ISSUE,
      'agent-inject-template-tls.key': `{{- with secret "${ISSUE}" ${CERT_ARGS} -}}\n{{ .Data.private_key }}\n{{- end }}\n`,
      'agent-inject-secret-ca.crt': ISSUE,
      'agent-inject-template-ca.crt': `{{- with secret "${ISSUE}" ${CERT_ARGS} -}}\n{{- range .Data.ca_chain -}}\n{{ . }}\n{{ end -}}\n{{- end -}}\n`,
    },
    sidekey: {
      'secret-tls.crt': `vault:${ISSUE}?${CERT_QUERY}#certificate`,
      'secret-tls.key': `vault:${ISSUE}?${CERT_QUERY}`,
      'template-tls.key': '{{ .private_key }}\n',
      'secret-ca.crt': `vault:${ISSUE}?${CERT_QUERY}`,
      'template-ca.crt': '{{ .ca_chain }}\n',
    },
    // A root-issued chain is the root alone.
    certificate: ({ certificate, key, ca }) => ({ 'tls.crt': certificate, 'tls.key': `${key}\n`, 'ca.crt': `${ca}\n` }),
    report: [
      /agent-inject-template-tls\.key: note: one issue serves tls\.crt, tls\.key, ca\.crt, so the key matches the certificate: vault-k8s issued a certificate per template/,
      /agent-inject-template-tls\.crt: note: vault-k8s re-rendered it on its own schedule; Sidekey re-issues at about 2\/3 of the lifetime/,
    ],
  },
  {
    name: 'a certificate with a parameter Sidekey does not issue with (uri_sans) is left',
    vault: {
      'agent-inject-secret-tls.crt': ISSUE,
      'agent-inject-template-tls.crt': `{{ with secret "${ISSUE}" "common_name=web.svc.test" "uri_sans=spiffe://shop/web" }}{{ .Data.certificate }}{{ end }}`,
    },
    sidekey: {},
    left: ['agent-inject-secret-tls.crt', 'agent-inject-template-tls.crt', 'agent-inject', 'role'],
    report: [
      /passes the parameter "uri_sans", which Sidekey does not issue with \(only common_name, alt_names, ip_sans, ttl\)/,
    ],
  },
  {
    name: 'a certificate with a common name admission refuses is left',
    vault: {
      'agent-inject-secret-tls.crt': ISSUE,
      'agent-inject-template-tls.crt': `{{ with pkiCert "${ISSUE}" "common_name=web..svc.test" }}{{ .Cert }}{{ end }}`,
    },
    sidekey: {},
    left: ['agent-inject-secret-tls.crt', 'agent-inject-template-tls.crt', 'agent-inject', 'role'],
    report: [/admission would refuse the certificate: common_name must be a DNS name/],
  },
  {
    name: 'a certificate and a key asked with different parameters are left (two issues that do not match)',
    vault: {
      'agent-inject-secret-tls.crt': ISSUE,
      'agent-inject-template-tls.crt': `{{ with secret "${ISSUE}" "common_name=web.svc.test" }}{{ .Data.certificate }}{{ end }}`,
      'agent-inject-secret-tls.key': ISSUE,
      'agent-inject-template-tls.key': `{{ with secret "${ISSUE}" "common_name=web.svc.test" "ttl=1h" }}{{ .Data.private_key }}{{ end }}`,
      'agent-inject-secret-password': 'secret/data/app/db',
      'agent-inject-template-password': '{{ with secret "secret/data/app/db" }}{{ .Data.data.password }}{{ end }}',
    },
    sidekey: { 'secret-password': 'vault:secret/app/db#password' },
    left: [
      'agent-inject-secret-tls.crt',
      'agent-inject-template-tls.crt',
      'agent-inject-secret-tls.key',
      'agent-inject-template-tls.key',
    ],
    report: [/file "tls\.key": pki\/issue\/web is asked with 2 different sets of parameters/],
  },
  {
    name: 'a transit write is left',
    vault: {
      'agent-inject-secret-token': 'transit/encrypt/app',
      'agent-inject-template-token':
        '{{ with secret "transit/encrypt/app" "plaintext=aGVsbG8=" }}{{ .Data.ciphertext }}{{ end }}',
    },
    sidekey: {},
    left: ['agent-inject-secret-token', 'agent-inject-template-token', 'agent-inject', 'role'],
    report: [/makes the read a write: Sidekey writes to Vault only to issue a certificate from <mount>\/issue\/<role>/],
  },
  {
    name: 'two secrets in one template are left, the other file is translated',
    vault: {
      'agent-inject-secret-both': 'secret/data/app/db',
      'agent-inject-template-both':
        '{{ with secret "secret/data/app/db" }}{{ .Data.data.password }}{{ end }}:{{ with secret "secret/data/app/api" }}{{ .Data.data.key }}{{ end }}',
      'agent-inject-secret-password': 'secret/data/app/db',
      'agent-inject-template-password': '{{ with secret "secret/data/app/db" }}{{ .Data.data.password }}{{ end }}',
    },
    sidekey: { 'secret-password': 'vault:secret/app/db#password' },
    left: ['agent-inject-secret-both', 'agent-inject-template-both'],
  },
  {
    name: 'a pipeline and a conditional are left',
    vault: {
      'agent-inject-secret-cert': 'secret/data/app/tls',
      'agent-inject-template-cert':
        '{{ with secret "secret/data/app/tls" }}{{ .Data.data.cert | base64Decode }}{{ end }}',
      'agent-inject-secret-flag': 'secret/data/app/db',
      'agent-inject-template-flag':
        '{{ with secret "secret/data/app/db" }}{{ if .Data.data.password }}set{{ end }}{{ end }}',
    },
    sidekey: {},
    left: [
      'agent-inject-secret-cert',
      'agent-inject-template-cert',
      'agent-inject-secret-flag',
      'agent-inject-template-flag',
      'agent-inject',
      'role',
    ],
  },
  {
    name: 'a secrets listing is left',
    vault: {
      'agent-inject-secret-all': 'secret/metadata/app',
      'agent-inject-template-all':
        '{{ range secrets "secret/metadata/app/" }}{{ with secret (printf "secret/data/app/%s" .) }}{{ .Data.data | toJSON }}{{ end }}{{ end }}',
    },
    sidekey: {},
    left: ['agent-inject-secret-all', 'agent-inject-template-all', 'agent-inject', 'role'],
  },
  {
    name: 'agent-configmap and agent-inject-token are left',
    vault: { 'agent-configmap': 'app-agent-config', 'agent-inject-token': 'true' },
    sidekey: {},
    left: ['agent-configmap', 'agent-inject-token', 'agent-inject', 'role'],
  },
  {
    name: '.Data of a KV v2 path (data and metadata) is left',
    vault: {
      'agent-inject-secret-password': 'secret/data/app/db',
      'agent-inject-template-password': '{{ with secret "secret/data/app/db" }}{{ .Data.password }}{{ end }}',
    },
    sidekey: {},
    left: ['agent-inject-secret-password', 'agent-inject-template-password', 'agent-inject', 'role'],
  },
];

const VAULT = 'vault.hashicorp.com/';
const ONE_FIELD = TABLE.find((r) => r.name === 'one KV v2 field alone')!;

function manifest(row: Row): string {
  const annotations = Object.fromEntries(
    Object.entries({ 'agent-inject': 'true', role: 'app', ...row.vault }).map(([k, v]) => [`${VAULT}${k}`, v]),
  );
  return stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'app', namespace: 'payments' },
    spec: {
      selector: { matchLabels: { app: 'app' } },
      template: {
        metadata: { labels: { app: 'app' }, annotations: { 'example.com/team': 'payments', ...annotations } },
        spec: {
          securityContext: { runAsUser: 1000 },
          serviceAccountName: 'app',
          containers: [{ name: 'app', image: 'example/app:1' }],
        },
      },
    },
  });
}

function io(files: Record<string, string>): ManifestIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    readFile: (p) => {
      const text = files[p];
      if (text === undefined) throw Object.assign(new Error('absent'), { code: 'ENOENT' });
      return text;
    },
    expand: (p) => [p],
    env: {},
    stdout: (t) => (out += t),
    stderr: (t) => (err += t),
    out: () => out,
    err: () => err,
  };
}

type Doc = Record<string, Record<string, Record<string, Record<string, unknown>>>>;

function podTemplate(doc: unknown): {
  metadata: { annotations: Record<string, string> };
  spec: Record<string, unknown>;
} {
  return (doc as Doc)['spec']?.['template'] as unknown as ReturnType<typeof podTemplate>;
}

interface Migrated {
  readonly code: number;
  readonly yaml: string;
  readonly err: string;
  readonly annotations: Record<string, string>;
}

function migrateRow(row: Row): Migrated {
  const files = io({ 'app.yaml': manifest(row) });
  const code = migrate(['app.yaml'], files);
  const annotations = podTemplate(parse(files.out())).metadata.annotations;
  return { code, yaml: files.out(), err: files.err(), annotations };
}

/** The agent configuration `sidekey render` builds for the translated manifest. */
function renderedConfig(yaml: string): AgentConfig {
  const files = io({ '-': yaml });
  const code = render(['--vault-addr', 'https://vault.example:8200', '-'], files);
  assert.equal(code, 0, files.err());
  assert.equal(files.err(), '', 'render reports nothing');
  const spec = podTemplate(parse(files.out())).spec as {
    initContainers: { name: string; env: { name: string; value?: string }[] }[];
  };
  const agent = spec.initContainers.find((c) => c.name === 'sidekey-agent');
  const value = agent?.env.find((e) => e.name === 'SIDEKEY_CONFIG')?.value;
  assert.ok(value !== undefined, 'the agent has its configuration');
  return JSON.parse(value) as AgentConfig;
}

void describe('sidekey migrate: the vault-k8s table', () => {
  for (const row of TABLE) {
    void it(row.name, () => {
      const m = migrateRow(row);
      const left = new Set(row.left ?? []);
      assert.equal(m.code, left.size > 0 ? 1 : 0, m.err);
      const sidekey = Object.fromEntries(
        Object.entries(m.annotations)
          .filter(([k]) => k.startsWith('sidekey.io/'))
          .map(([k, v]) => [k.slice('sidekey.io/'.length), v]),
      );
      const translatedAny = Object.keys(row.sidekey).length > 0;
      const expected = translatedAny
        ? { inject: 'true', 'vault-role': 'app', 'mount-path': '/vault/secrets', ...row.sidekey }
        : {};
      assert.deepEqual(sidekey, expected);
      const remaining = Object.keys(m.annotations)
        .filter((k) => k.startsWith(VAULT))
        .map((k) => k.slice(VAULT.length));
      assert.deepEqual(remaining.sort(), [...left].sort(), 'exactly the untranslated vault-k8s annotations stay');
      assert.equal(m.annotations['example.com/team'], 'payments', 'other annotations stay');
      for (const key of left)
        assert.match(m.err, new RegExp(`${VAULT}${key.replace(/[.]/g, '\\.')}: left untranslated: \\S`));
      for (const said of row.report ?? []) assert.match(m.err, said);
      if (translatedAny) renderedConfig(m.yaml);
    });
  }

  void it('prints the table of translated and untranslated annotations', (t) => {
    let translated = 0;
    let untranslated = 0;
    for (const row of TABLE) {
      const m = migrateRow(row);
      const summary = /: (\d+) translated, (\d+) left untranslated/.exec(m.err);
      const [tr, un] = [Number(summary?.[1]), Number(summary?.[2])];
      translated += tr;
      untranslated += un;
      t.diagnostic(`${row.name}: ${tr} translated, ${un} left`);
    }
    t.diagnostic(
      `${TABLE.length} annotation sets: ${translated} annotations translated, ${untranslated} left untranslated`,
    );
    assert.ok(translated > untranslated);
  });
});

void describe('sidekey migrate: input and output', () => {
  void it('keeps comments, other documents and their order, and edits List items', () => {
    const text = `# the app\n${manifest(ONE_FIELD)}---\napiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: Pod\n    metadata:\n      name: p\n      annotations:\n        # who reads it\n        ${VAULT}agent-inject: "true"\n        ${VAULT}agent-inject-secret-x: kv1/app/db\n    spec:\n      containers: [{ name: app, image: x }]\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s # the service\n`;
    const files = io({ 'in.yaml': text });
    assert.equal(migrate(['in.yaml'], files), 0, files.err());
    const out = files.out();
    assert.match(out, /^# the app\n/);
    assert.match(out, /# who reads it\n\s+sidekey\.io\/inject: "true"/);
    assert.match(out, /name: s # the service/);
    const kinds = parseAllDocuments(out).map((d) => (d.toJS() as { kind: string }).kind);
    assert.deepEqual(kinds, ['Deployment', 'List', 'Service']);
    assert.doesNotMatch(out, /vault\.hashicorp\.com/);
  });

  void it('passes manifests without vault-k8s annotations through byte for byte', () => {
    const text = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  k:   "v"\n';
    const files = io({ 'c.yaml': text });
    assert.equal(migrate(['c.yaml'], files), 0);
    assert.equal(files.out(), text);
  });

  void it('refuses what is not a manifest, and invalid YAML, with exit 2 and nothing on stdout', () => {
    for (const [name, text, why] of [
      ['notes.txt', 'just some notes\n', /document 1 is not a Kubernetes manifest/],
      ['bad.yaml', 'a: [1, 2\n', /document 1: invalid YAML/],
      ['list.yaml', '- a\n- b\n', /not a Kubernetes manifest/],
    ] as const) {
      const files = io({ [name]: manifest(ONE_FIELD), [`${name}-`]: text });
      assert.equal(migrate([name, `${name}-`], files), 2, name);
      assert.match(files.err(), why);
      assert.equal(files.out(), '', 'nothing is printed when an input is bad');
    }
  });

  void it('refuses a document whose aliases expand past the bound', () => {
    const bomb = `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {${VAULT}agent-inject: "true", ${VAULT}agent-inject-secret-x: kv1/a}\n  labels:\n    a: &a [x, x, x, x, x, x, x, x, x, x]\n    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n    d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n`;
    const files = io({ 'bomb.yaml': bomb });
    assert.equal(migrate(['bomb.yaml'], files), 2);
    assert.match(files.err(), /^bomb\.yaml: .*alias/m);
    assert.equal(files.out(), '');
  });

  void it('reports every annotation as JSON with --report json', () => {
    const row = TABLE.find((r) => r.name.startsWith('a command and skip-verify'))!;
    const files = io({ 'app.yaml': manifest(row) });
    assert.equal(migrate(['--report', 'json', 'app.yaml'], files), 1);
    const report = JSON.parse(files.err()) as {
      translated: number;
      untranslated: number;
      manifests: { file: string; manifest: string; annotations: { key: string; outcome: string; reason?: string }[] }[];
    };
    assert.equal(report.translated, 4);
    assert.equal(report.untranslated, 2);
    assert.deepEqual(
      report.manifests.map((m) => [m.file, m.manifest, m.annotations.length]),
      [['app.yaml', 'Deployment/app', 6]],
    );
    const command = report.manifests[0]?.annotations.find((a) => a.key === `${VAULT}agent-inject-command-password`);
    assert.ok(command !== undefined);
    assert.equal(command.outcome, 'untranslated');
    assert.match(command.reason ?? '', /sidekey\.io\/reload/);
  });

  void it('writes JSON back as JSON', () => {
    const json = JSON.stringify(parse(manifest(ONE_FIELD)));
    const files = io({ 'app.json': json });
    assert.equal(migrate(['app.json'], files), 0, files.err());
    const out = JSON.parse(files.out()) as unknown;
    assert.equal(podTemplate(out).metadata.annotations['sidekey.io/secret-password'], 'vault:secret/app/db#password');
  });

  void it('rewrites files in place with --in-place', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sidekey-migrate-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'app.yaml');
    await writeFile(file, manifest(ONE_FIELD));
    const files = { ...io({}), readFile: (p: string) => (p === file ? manifest(ONE_FIELD) : '') };
    assert.equal(migrate(['--in-place', file], files), 0);
    assert.equal(files.out(), '');
    assert.match(await readFile(file, 'utf8'), /sidekey\.io\/secret-password: "vault:secret\/app\/db#password"/);
  });

  void it('says what is wrong with the command line', () => {
    const files = io({});
    assert.equal(migrate([], files), 2);
    assert.match(files.err(), /name the manifests/);
    assert.equal(migrate(['--default-template', 'xml', 'a'], io({})), 2);
    assert.equal(migrate(['--in-place', '-'], io({})), 2);
    const missing = io({});
    assert.equal(migrate(['missing.yaml'], missing), 2);
    assert.match(missing.err(), /^missing\.yaml: cannot read: ENOENT/);
  });
});

/** The PEM blocks of a text, each without a newline after it. */
function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN ([A-Z ]+)-----\n[\s\S]+?\n-----END \1-----/g) ?? [];
}

/** The base64 body of a PEM private key: what a leak of it would show. */
function keyBody(pem: string): string {
  return pem.split('\n').find((line) => line !== '' && !line.startsWith('-----')) ?? pem;
}

void describe('sidekey migrate: the translated files against OpenBao', () => {
  let bao: OpenBaoHandle;
  let k8s: KubernetesAuth;
  let dir: string;
  let rootCa: string;
  before(async () => {
    bao = await startOpenBao();
    dir = await mkdtemp(path.join(tmpdir(), 'sidekey-migrate-bao-'));
    await bao.api('POST', 'sys/mounts/secret', { type: 'kv', options: { version: '2' } }).catch(() => undefined);
    await bao.enableKv('kv1', 1);
    for (const { mount, key, data } of STORE)
      await bao.api(
        'POST',
        mount === 'secret' ? `secret/data/${key}` : `kv1/${key}`,
        mount === 'secret' ? { data } : data,
      );
    rootCa = await bao.setupPki('pki', PKI_ROLE);
    await bao.writePolicy('read-all', READ_ALL_POLICY);
    await bao.writePolicy('pki-web', `path "${ISSUE}" { capabilities = ["update"] }`);
    k8s = await bao.setupKubernetes('app', ['read-all', 'pki-web'], 'payments', 'app');
    await writeFile(path.join(dir, 'sa-token'), k8s.token);
  });
  after(async () => {
    await bao.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs the agent once (init-only) on the row's translated manifest; the directory it wrote and its output. */
  async function runAgent(t: TestContext, row: Row): Promise<{ secretsDir: string; output: string; fileMode: number }> {
    const rendered = renderedConfig(migrateRow(row).yaml);
    const secretsDir = await mkdtemp(path.join(dir, 'files-'));
    const config: AgentConfig = {
      ...rendered,
      mode: 'init-only',
      role: 'init',
      secretsDir,
      vault: { ...rendered.vault!, addr: bao.addr, tokenFile: path.join(dir, 'sa-token') },
    };
    const agent = startAgent(t, config, {}, SECRETS);
    assert.equal(await agent.exited, 0, agent.output());
    return { secretsDir, output: agent.output(), fileMode: config.fileMode };
  }

  for (const row of TABLE.filter((r) => r.backend !== undefined)) {
    void it(`${row.name}: the same file as vault-k8s`, async (t) => {
      const backend = row.backend!;
      const { secretsDir, fileMode } = await runAgent(t, row);
      const written = await readFile(path.join(secretsDir, backend.file), 'utf8');
      if (backend.compare === 'bytes') assert.equal(written, backend.vaultK8s);
      else assert.deepEqual(parseEnv(written), parseEnv(backend.vaultK8s));
      assert.equal((await stat(path.join(secretsDir, backend.file))).mode & 0o777, fileMode);
    });
  }

  for (const row of TABLE.filter((r) => r.certificate !== undefined)) {
    void it(`${row.name}: one issue from the pki engine, laid out as vault-k8s did`, async (t) => {
      const vaultK8s = row.certificate!;
      const { secretsDir, output, fileMode } = await runAgent(t, row);
      const names = Object.keys(vaultK8s({ certificate: '', key: '', ca: '' }));
      const written = new Map<string, string>();
      for (const name of names) {
        written.set(name, await readFile(path.join(secretsDir, name), 'utf8'));
        assert.equal((await stat(path.join(secretsDir, name))).mode & 0o777, fileMode);
      }
      const blocks = [...written.values()].flatMap(pemBlocks);
      const key = blocks.find((b) => /^-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(b)) ?? '';
      const certs = blocks.filter((b) => b.startsWith('-----BEGIN CERTIFICATE-----'));
      const leaf = certs.find((c) => !new X509Certificate(c).ca) ?? '';
      const cert = new X509Certificate(leaf);
      assert.ok(cert.checkPrivateKey(createPrivateKey(key)), 'the key belongs to the certificate');
      assert.ok(cert.checkIssued(new X509Certificate(rootCa)), "issued by the pki engine's root");
      assert.ok(cert.subject.split('\n').includes(`CN=${CERT_NAMES.commonName}`), cert.subject);
      assert.deepEqual((cert.subjectAltName ?? '').split(', ').sort(), CERT_NAMES.sans);
      // Byte for byte what the vault-k8s templates wrote for this issue; compared without printing the key.
      const expected = vaultK8s({ certificate: leaf, key, ca: rootCa });
      for (const name of names) assert.ok(written.get(name) === expected[name], `${name} is laid out as vault-k8s did`);
      assert.ok(!output.includes(keyBody(key)), 'the private key reached the agent output');
    });
  }
});

void describe('sidekey migrate: templates', () => {
  const reasons: readonly (readonly [string, RegExp])[] = [
    ['{{ with secret "kv/a" }}{{ .Data.x }', /not closed with \}\}/],
    ['{{ with secret "kv/a" }}{{ with secret "kv/a" }}{{ end }}{{ end }}', /nests one with block/],
    ['x{{ end }}', /without a with block/],
    ['{{ with secret "kv/a" }}{{ .Data.x }}', /not closed with \{\{ end \}\}/],
    ['{{ .Data.x }}', /outside a with secret/],
    ['{{ with secret "kv/a" }}{{ .Data.data }}{{ end }}', /an action Sidekey templates do not have/],
    ['{{ with secret "kv/a" }}{{ .Data.data.x }}{{ .Data.y }}{{ end }}', /mixes \.Data\.x and \.Data\.data\.x/],
    ['{{ with secret "kv/a" }}{{ range $k, $v := .Data }}{{ $k }}{{ end }}{{ end }}', /lines other than KEY=VALUE/],
    [
      '{{ with secret "kv/a" }}head{{ range $k, $v := .Data }}{{ $k }}={{ $v }}\n{{ end }}{{ end }}',
      /besides the lines/,
    ],
    ['{{ with secret "kv/a" }}{{ $x := .Data.y }}{{ end }}', /a template variable/],
    ['{{ with secret "pki/issue/web" "common_name=a.svc.test" }}{{ .Data.ca_chain }}{{ end }}', /as a Go list: range/],
    [
      '{{ with secret "pki/issue/web" "common_name=a.svc.test" }}{{ range .Data.ca_chain }}{{ . }}{{ end }}{{ end }}',
      /more than each certificate and one newline/,
    ],
    [
      '{{ with secret "pki/issue/web" "common_name=a.svc.test" }}{{ .Data.expiration }}{{ end }}',
      /not a certificate field Sidekey writes/,
    ],
    ['{{ with pkiCert "pki/issue/web" }}{{ .Cert }}{{ end }}', /passes no common_name/],
    ['{{ with pkiCert "pki/issue/web" "common_name=a.svc.test" "ttl=5s" }}{{ .Cert }}{{ end }}', /ttl must be between/],
    ['{{ with secret "pki/issue/web" (printf "common_name=%s" "a") }}{{ end }}', /other than quoted "key=value"/],
    [
      '{{ with pkiCert "pki/issue/web" "common_name=a.svc.test" }}{{ .Cert }}{{ end }}{{ with pkiCert "pki/issue/web" "common_name=b.svc.test" }}{{ .Key }}{{ end }}',
      /reads more than one secret/,
    ],
  ];
  for (const [template, reason] of reasons) {
    void it(`refuses ${JSON.stringify(template)}`, () => {
      const t = translateTemplate(template, 'f');
      assert.ok(!t.ok, 'refused');
      assert.match(t.reason, reason);
    });
  }

  void it('applies trim markers and drops comments as Go does', () => {
    const t = translateTemplate(
      '{{/* the login */}}\n{{- with secret "kv/a" -}}\n  {{ .Data.user }} {{- /* inner */ -}} :{{ .Data.pw -}}\n\n{{ end }}',
      'f',
    );
    assert.deepEqual(t, { ok: true, file: { path: 'kv/a', template: '{{ .user }}:{{ .pw }}', notes: [] } });
  });

  void it('writes a ca_chain range with the newline before each certificate as the chain after one newline', () => {
    const t = translateTemplate(
      '{{ with secret "pki/issue/web" "common_name=a.svc.test" }}{{ range .Data.ca_chain }}\n{{ . }}{{ end }}{{ end }}',
      'f',
    );
    assert.ok(t.ok);
    assert.equal(t.file.template, '\n{{ .ca_chain }}');
  });

  void it('leaves {{-3}} (a number, not a trim marker) to the refusal', () => {
    assert.equal(translateTemplate('a {{-3}}', 'f').ok, false);
  });

  void it('gives the same result when run again on its own output', () => {
    const row = TABLE.find((r) => (r.left?.length ?? 0) > 0 && Object.keys(r.sidekey).length > 0)!;
    const first = migrateRow(row);
    const again = io({ 'again.yaml': first.yaml });
    assert.equal(migrate(['again.yaml'], again), 1);
    assert.equal(again.out(), first.yaml);
    assert.doesNotMatch(again.err(), /stays with vault-k8s/);
  });
});
