// A pod's Vault settings for its agent: annotations first, then the webhook's defaults. Refuses combinations
// that could never work (no address, no role, an address the operator does not allow, system paths), with the fix.
import type { AgentConfig } from '../../../injector/agent-config.ts';
import type { AnnotationRequest } from '../../../injector/annotations.ts';
import { ANNOTATION_PREFIX } from '../../../injector/constants.ts';
import { SA_TOKEN_FILE } from '../../../injector/identity.ts';
import type { JsonObject } from '../../../injector/patch.ts';
import { PROBLEM_CODES } from '../../../injector/problems.ts';
import { formatReference, vaultSystemMount } from '../../../injector/reference.ts';
import { DEFAULT_CA_KEY, VAULT_CA_DIR, VAULT_CA_FILE, VAULT_CA_VOLUME } from '../../../injector/vault-ca.ts';
import type { CaObject } from '../../../injector/vault-ca.ts';
import type {
  ProblemDraft,
  ProviderWiring,
  ResolveInput,
  ResolveOutput,
} from '../../../injector/providers/declaration.ts';
import type { POD_VAULT_AUTH, VaultDefaults } from './vault-settings.ts';
import { defined } from '../../../injector/defined.ts';
import { checkCertificateFiles, checkIssueSets } from './vault-pki.ts';

/** Where the approle Secret is mounted in agent containers (never in app containers). */
export const APPROLE_DIR = '/sidekey/vault-approle';
export const APPROLE_VOLUME = 'sidekey-vault-approle';

/** What a pod's vault-* annotations ask for. */
export interface VaultRequest {
  readonly addr?: string;
  readonly auth?: (typeof POD_VAULT_AUTH)[number];
  readonly authPath?: string;
  readonly role?: string;
  readonly namespace?: string;
  /** approle: the Secret (keys role-id, secret-id) mounted into the agent only. */
  readonly approleSecret?: string;
  /** The ConfigMap or Secret key holding the Vault CA, mounted into the agent only. */
  readonly ca?: CaObject;
}

type VaultInput = ResolveInput<{ readonly vault: VaultDefaults }>;
type VaultConfig = NonNullable<AgentConfig['vault']>;

/** The pod's vault-* annotations, as the vault annotation readers stored them. */
export function vaultRequest(request: AnnotationRequest): VaultRequest {
  return request.providers['vault'] ?? {};
}

const badBackend = (annotation: string, message: string): ProblemDraft => ({
  code: PROBLEM_CODES.badBackend,
  annotation,
  message,
});
const missing = (annotation: string, message: string): ProblemDraft => ({
  code: PROBLEM_CODES.missingSetting,
  annotation,
  message,
});

export function resolveVault(input: VaultInput, out: ResolveOutput): ProviderWiring | undefined {
  const {
    request,
    settings: { vault: defaults },
  } = input;
  const asked = vaultRequest(request);
  if (asked.addr !== undefined) checkPodVaultAddr(asked.addr, defaults, out.problems);
  checkVaultPaths(request, defaults, out.problems);
  checkIssueSets(request.files, out.problems);
  checkCertificateFiles(request.files, out.problems, out.warnings);
  warnKvDataPaths(request, out.warnings);
  const addr = asked.addr ?? defaults.addr;
  const auth = asked.auth ?? defaults.auth;
  const role = asked.role ?? defaults.role;
  const before = out.problems.length;
  if (addr === undefined)
    out.problems.push(
      missing('vault-addr', 'no Vault address: set this annotation or vault.addr in the webhook configuration'),
    );
  checkVaultAuth({ input, auth, role, problems: out.problems });
  if (out.problems.length > before || addr === undefined) return undefined;
  const trust = resolveTrust(addr, asked, defaults, out.warnings);
  const namespace = asked.namespace ?? defaults.namespace;
  const config: VaultConfig = {
    addr,
    auth,
    // Each method's own mount by default: an approle pod logs in at auth/approle, not auth/kubernetes.
    authPath: asked.authPath ?? defaults.authPath ?? auth,
    ...defined({ role }),
    ...defined({ namespace }),
    ...(auth === 'approle'
      ? { roleIdFile: `${APPROLE_DIR}/role-id`, secretIdFile: `${APPROLE_DIR}/secret-id` }
      : { tokenFile: SA_TOKEN_FILE }),
    ...trust.settings,
  };
  const approleSecret = auth === 'approle' ? asked.approleSecret : undefined;
  return { config: { vault: config }, ...agentMounts(approleSecret, trust.ca) };
}

/** The approle Secret and the CA object, mounted read-only into the agent only. */
function agentMounts(
  approleSecret: string | undefined,
  ca: CaObject | undefined,
): Pick<ProviderWiring, 'mounts' | 'volumes'> {
  const mounts: JsonObject[] = [];
  const volumes: JsonObject[] = [];
  if (approleSecret !== undefined) {
    mounts.push({ name: APPROLE_VOLUME, mountPath: APPROLE_DIR, readOnly: true });
    volumes.push({ name: APPROLE_VOLUME, secret: { secretName: approleSecret, defaultMode: 0o444 } });
  }
  if (ca !== undefined) {
    mounts.push({ name: VAULT_CA_VOLUME, mountPath: VAULT_CA_DIR, readOnly: true });
    volumes.push(vaultCaVolume(ca));
  }
  return { mounts, volumes };
}

/**
 * Only the CA key, under the name the agent reads: a missing object or key holds the pod with a FailedMount event
 * naming it.
 */
function vaultCaVolume(ca: CaObject): JsonObject {
  const items = [{ key: ca.key, path: DEFAULT_CA_KEY }];
  return ca.kind === 'secret'
    ? { name: VAULT_CA_VOLUME, secret: { secretName: ca.name, items, defaultMode: 0o444 } }
    : { name: VAULT_CA_VOLUME, configMap: { name: ca.name, items, defaultMode: 0o444 } };
}

interface Trust {
  readonly settings: Pick<VaultConfig, 'caFile' | 'caCert'>;
  /** The object mounted at VAULT_CA_FILE. */
  readonly ca?: CaObject;
}

/** The CA object a pod's agent mounts: its own annotation first, then the webhook's vault.caFrom. */
function caObjectOf(asked: VaultRequest, defaults: VaultDefaults): CaObject | undefined {
  if (asked.ca !== undefined) return asked.ca;
  const from = defaults.caFrom;
  if (from?.configMap !== undefined) return { kind: 'configMap', name: from.configMap, key: from.key };
  if (from?.secret !== undefined) return { kind: 'secret', name: from.secret, key: from.key };
  return undefined;
}

/**
 * The CA an https Vault's agent trusts: a mounted object (annotation, vault.caFrom), else vault.caCert, else the public
 * roots.
 */
function resolveTrust(addr: string, asked: VaultRequest, defaults: VaultDefaults, warnings: string[]): Trust {
  if (new URL(addr).protocol !== 'https:') {
    if (asked.ca !== undefined)
      warnings.push(`${ANNOTATION_PREFIX}vault-ca is ignored: the Vault address ${addr.slice(0, 80)} is not https`);
    return { settings: {} };
  }
  const ca = caObjectOf(asked, defaults);
  if (ca !== undefined) return { settings: { caFile: VAULT_CA_FILE }, ca };
  return { settings: defaults.caCert === undefined ? {} : { caCert: defaults.caCert } };
}

/**
 * The vault-k8s habit `vault:secret/data/payments/db`: Sidekey finds a KV v2 mount itself and adds `data/`, so
 * on KV v2 that path reads secret/data/data/payments/db. A KV v1 mount may hold a `data/` key, so only a warning.
 */
function warnKvDataPaths(request: AnnotationRequest, warnings: string[]): void {
  for (const file of request.files) {
    const [mount, second, ...rest] = file.ref.path.split('/');
    if (file.ref.provider !== 'vault' || second !== 'data' || rest.length === 0) continue;
    const fixed = formatReference({ ...file.ref, path: [mount, ...rest].join('/') });
    warnings.push(
      `${ANNOTATION_PREFIX}secret-${file.name}: "${formatReference(file.ref)}" has "data/" in its path: KV v2 paths are written without it (Sidekey adds it), so on KV v2 this reads ${mount ?? ''}/data/data/${rest.join('/')}; write ${ANNOTATION_PREFIX}secret-${file.name}: "${fixed}" (keep "data/" only for a KV v1 key named so)`,
    );
  }
}

/**
 * A pod's own Vault address: https unless the operator allows http, and one the operator listed when there is a list.
 */
function checkPodVaultAddr(addr: string, defaults: VaultDefaults, problems: ProblemDraft[]): void {
  const url = new URL(addr);
  if (url.protocol === 'http:' && !defaults.allowHttp) {
    problems.push(
      badBackend(
        'vault-addr',
        "must be https: over http the agent would send the pod's service-account token in clear text (the webhook's vault.allowHttp is off)",
      ),
    );
    return;
  }
  const allowed = [...defaults.allowedAddrs, ...(defaults.addr === undefined ? [] : [defaults.addr])];
  if (defaults.allowedAddrs.length > 0 && !allowed.some((a) => new URL(a).origin === url.origin)) {
    problems.push(
      badBackend(
        'vault-addr',
        `is not one of the Vault addresses this webhook allows (vault.addr and vault.allowedAddrs, ${allowed.length} in all): drop the annotation to use the default, or ask the operator to list it`,
      ),
    );
  }
}

/**
 * References that can reach a Vault system backend (reference.ts), and a pod's namespace that puts one before every
 * path, refused unless the operator allows them.
 */
function checkVaultPaths(request: AnnotationRequest, defaults: VaultDefaults, problems: ProblemDraft[]): void {
  if (defaults.allowSystemPaths) return;
  const fix = 'or ask the operator for the webhook setting vault.allowSystemPaths';
  const namespaceMount = vaultSystemMount(`${vaultRequest(request).namespace ?? ''}/`);
  if (namespaceMount !== undefined) {
    problems.push(
      badBackend(
        'vault-namespace',
        `has a "${namespaceMount}" segment, so every read would go to that namespace's ${namespaceMount}/ backend; name the namespace alone, ${fix}`,
      ),
    );
  }
  for (const file of request.files) {
    const mount = file.ref.provider === 'vault' ? vaultSystemMount(file.ref.path) : undefined;
    if (mount === undefined) continue;
    problems.push({
      code: PROBLEM_CODES.badReference,
      annotation: `secret-${file.name}`,
      message:
        `can reach Vault's ${mount}/ backend, which answers with the agent's own credentials or the server's state, not app secrets (auth/token/lookup-self returns the agent's token): ` +
        `a "${mount}" segment anywhere but last counts, since a namespace may come before it (team-a/${mount}/…); read from a secrets engine such as secret/ or database/ (a key may be named ${mount} as the last segment), ${fix}`,
    });
  }
}

interface AuthCheck {
  readonly input: VaultInput;
  readonly auth: string;
  readonly role: string | undefined;
  readonly problems: ProblemDraft[];
}

function checkVaultAuth({ input, auth, role, problems }: AuthCheck): void {
  if (auth === 'approle') {
    if (vaultRequest(input.request).approleSecret === undefined) {
      problems.push(
        missing(
          'vault-approle-secret',
          'approle auth needs a Secret with keys role-id and secret-id, mounted into the agent only',
        ),
      );
    }
    return;
  }
  if (role === undefined)
    problems.push(
      missing(
        'vault-role',
        `${auth} auth needs a Vault role: set this annotation or vault.role in the webhook configuration`,
      ),
    );
  if (input.noServiceAccountToken) {
    problems.push(
      missing(
        'vault-auth',
        `${auth} auth reads the service-account token, but the pod sets automountServiceAccountToken: false; remove that or use approle`,
      ),
    );
  }
  // No warning when the kube-api-access mount is missing: a pod template and render's offline pod never have
  // it (the API server's ServiceAccount admission adds it at creation, before this webhook sees the pod), and
  // render, lint and the webhook must give the same answer.
}
