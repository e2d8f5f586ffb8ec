// Vault/OpenBao, as the injector sees it: vault:<mount>/<path>[#field][@KV v2 version] and PKI certificates
// vault:<mount>/issue/<role>?common_name=…[#field] (vault-pki.ts), a pod's vault-* annotations over the webhook's
// vault settings, the pod's service-account token (or an approle Secret) as login.
import { patternField, setProviderOption } from '../../../injector/annotation-spec.ts';
import type { KeyReader } from '../../../injector/annotation-spec.ts';
import { VAULT_AUTH_PATH } from '../../../injector/agent-config.ts';
import { ANNOTATION_PREFIX } from '../../../injector/constants.ts';
import { vaultAddrProblem } from '../../../injector/http-url.ts';
import { PROBLEM_CODES, quote } from '../../../injector/problems.ts';
import { VAULT_CA_VOLUME, parseCaObject } from '../../../injector/vault-ca.ts';
import { declareProvider } from '../../../injector/providers/declaration.ts';
import { APPROLE_VOLUME, resolveVault, vaultRequest } from './vault-resolve.ts';
import type { VaultRequest } from './vault-resolve.ts';
import { POD_VAULT_AUTH, VAULT_NAMESPACE, VAULT_ROLE, vaultSettings } from './vault-settings.ts';
import { ISSUE_EXAMPLE, issueProblem } from './vault-pki.ts';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

const defaults = vaultSettings.vault.parse({});

function vaultField(field: keyof VaultRequest, pattern: RegExp, what: string): KeyReader {
  return patternField(PROBLEM_CODES.badBackend, pattern, what, 128, (draft, value) => {
    setProviderOption(draft, 'vault', field, value);
  });
}

const readAddr: KeyReader = (value, { draft, findings }, key) => {
  const problem = vaultAddrProblem(value);
  if (problem === undefined) setProviderOption(draft, 'vault', 'addr', value);
  else findings.add(PROBLEM_CODES.badBackend, key, problem);
};

const readAuth: KeyReader = (value, { draft, findings }, key) => {
  const auth = POD_VAULT_AUTH.find((a) => a === value);
  if (auth !== undefined) setProviderOption(draft, 'vault', 'auth', auth);
  else findings.add(PROBLEM_CODES.badBackend, key, `must be one of ${POD_VAULT_AUTH.join(', ')}, not ${quote(value)}`);
};

const readCa: KeyReader = (value, { draft, findings }, key) => {
  const parsed = parseCaObject(value);
  if (parsed.ok) setProviderOption(draft, 'vault', 'ca', parsed.ca);
  else findings.add(PROBLEM_CODES.badBackend, key, parsed.problem);
};

export const vault = declareProvider({
  name: 'vault',
  strictSegments: true,
  versionProblem: (version) => (/^\d+$/.test(version) ? undefined : 'a vault @version must be a KV v2 version number'),
  parameters: issueProblem,
  settings: vaultSettings,
  flags: {
    'vault-addr': { path: ['vault', 'addr'], kind: 'string', help: 'default Vault/OpenBao address' },
    'vault-role': { path: ['vault', 'role'], kind: 'string', help: 'default Vault role' },
    'vault-auth': { path: ['vault', 'auth'], kind: 'string', help: 'default Vault auth: kubernetes|jwt|approle' },
    'vault-auth-path': { path: ['vault', 'authPath'], kind: 'string', help: 'default Vault auth mount path' },
    'vault-namespace': { path: ['vault', 'namespace'], kind: 'string', help: 'default Vault namespace' },
  },
  annotations: [
    {
      key: 'vault-addr',
      example: 'https://vault.vault.svc:8200',
      doc: "Vault/OpenBao address: https only unless the webhook's `vault.allowHttp`; one of `vault.allowedAddrs` when the operator lists them",
      default: "the webhook's `vault.addr`",
      read: readAddr,
    },
    {
      key: 'vault-role',
      example: 'payments',
      doc: 'Vault role for kubernetes/jwt auth',
      default: "the webhook's `vault.role`",
      read: vaultField('role', VAULT_ROLE, 'a Vault role name ([A-Za-z0-9_.@-], at most 128)'),
    },
    {
      key: 'vault-auth-path',
      example: 'kubernetes',
      doc: 'auth mount path without `auth/` (no `.` or `..` segments)',
      default: "the webhook's `vault.authPath`, else the auth method's name (`kubernetes`, `jwt`, `approle`)",
      read: vaultField(
        'authPath',
        VAULT_AUTH_PATH,
        'an auth mount path without "auth/" such as kubernetes or k8s/prod',
      ),
    },
    {
      key: 'vault-auth',
      example: 'kubernetes',
      doc: '`kubernetes`, `jwt` or `approle`',
      default: `\`${defaults.auth}\``,
      read: readAuth,
    },
    {
      key: 'vault-namespace',
      example: 'team-a',
      doc: 'Vault Enterprise / OpenBao namespace',
      default: "the webhook's `vault.namespace`",
      read: vaultField('namespace', VAULT_NAMESPACE, 'a Vault namespace such as team-a or team-a/payments'),
    },
    {
      key: 'vault-approle-secret',
      example: 'payments-approle',
      doc: 'approle: the Kubernetes Secret (keys `role-id`, `secret-id`) mounted into the agent only',
      default: '—',
      read: vaultField('approleSecret', DNS_SUBDOMAIN, 'a Secret name (keys role-id and secret-id)'),
    },
    {
      key: 'vault-ca',
      example: 'configmap:vault-ca#ca.crt',
      doc: "the CA of an https Vault behind a private CA: `configmap:<name>[#<key>]` or `secret:<name>[#<key>]` in the pod's namespace (key `ca.crt` by default), mounted read-only into the agent only; replaces the webhook's CA for this pod",
      default: "the webhook's `vault.caCert` or `vault.caFrom`, else the public roots",
      read: readCa,
    },
  ],
  docs: {
    referenceExample: 'vault:secret/app/db#password',
    parametersExample: ISSUE_EXAMPLE,
    referenceNote:
      'a PKI certificate is issued (and re-issued at about 2/3 of its lifetime) by `vault:<mount>/issue/<role>?common_name=<DNS name>[&alt_names=<DNS names>][&ip_sans=<IPs>][&ttl=<1m..8784h>]#<certificate|private_key|issuing_ca|ca_chain|serial_number>`, the files with the same parameters from one issue; ' +
      "a `vault:` path with an `auth`, `sys` or `identity` segment anywhere but last (`vault:auth/…`, `vault:team-a/sys/…`: a namespace may come first) is refused unless the webhook's `vault.allowSystemPaths`",
    annotationHints: ['`vault-addr` an http(s) URL', '`vault-auth` one of kubernetes, jwt, approle'],
    missingSettings: 'Vault address or role, approle Secret',
  },
  reservedVolumes: [APPROLE_VOLUME, VAULT_CA_VOLUME],
  unused: (request) =>
    Object.keys(vaultRequest(request)).length > 0
      ? `${ANNOTATION_PREFIX}vault-* annotations are ignored: no secret uses vault:`
      : undefined,
  resolve: resolveVault,
});
