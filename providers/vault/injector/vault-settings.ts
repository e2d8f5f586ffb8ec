// Vault/OpenBao webhook settings (the chart's config.vault) and the patterns its annotations share with them.
import { z } from 'zod';
import { VAULT_AUTH_PATH } from '../../../injector/agent-config.ts';
import { HTTP_URL_PATTERN, vaultAddrProblem } from '../../../injector/http-url.ts';
import { DEFAULT_CA_KEY, MAX_CA_PEM_BYTES, OBJECT_KEY, caPemProblem } from '../../../injector/vault-ca.ts';

export const VAULT_ROLE = /^[A-Za-z0-9_.@-]{1,128}$/;
export const VAULT_NAMESPACE = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*\/?$/;
/** Annotation values for `vault-auth` (the agent also knows `token`, which a pod cannot be given by annotation). */
export const POD_VAULT_AUTH = ['kubernetes', 'jwt', 'approle'] as const;

const objectName = (kind: string): z.ZodString =>
  z
    .string()
    .max(253)
    .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, `must be a ${kind} name`);

const caObjectSchema = z
  .strictObject({
    configMap: objectName('ConfigMap')
      .optional()
      .describe("A ConfigMap holding the CA PEM (trust-manager's Bundle target, for one)."),
    secret: objectName('Secret').optional().describe("A Secret holding the CA PEM (cert-manager's ca.crt, for one)."),
    key: z
      .string()
      .regex(OBJECT_KEY, 'must be a data key of [-._a-zA-Z0-9]')
      .describe('The key holding the PEM.')
      .default(DEFAULT_CA_KEY),
  })
  .refine((v) => (v.configMap === undefined) !== (v.secret === undefined), {
    error: 'give exactly one of configMap or secret',
  })
  .describe(
    "The Vault CA from a ConfigMap or Secret that must exist in every injected pod's namespace (e.g. distributed by trust-manager), mounted read-only into the agents that talk to Vault; a pod whose namespace lacks it stays in Init with a FailedMount event naming it. Instead of caCert; sidekey.io/vault-ca overrides it per pod.",
  );

const vaultSchema = z
  .strictObject({
    addr: z
      .url()
      .regex(HTTP_URL_PATTERN, 'must be an http(s) URL such as https://vault.vault.svc:8200')
      .superRefine((s, ctx) => {
        const problem = vaultAddrProblem(s);
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional()
      .describe(
        'Default Vault/OpenBao address, e.g. https://vault.vault.svc:8200. Pods using vault: references need it here or in sidekey.io/vault-addr.',
      ),
    auth: z.enum(POD_VAULT_AUTH).describe('Default Vault auth method.').default('kubernetes'),
    authPath: z
      .string()
      .max(128)
      .regex(VAULT_AUTH_PATH)
      .optional()
      .describe(
        "Default auth mount path without the auth/ prefix; absent means the auth method's own mount (kubernetes, jwt or approle).",
      ),
    allowHttp: z
      .boolean()
      .describe(
        "Let sidekey.io/vault-addr name an http:// address: the agent then sends the pod's service-account token (its Vault login) in clear text. Off: https only.",
      )
      .default(false),
    allowedAddrs: z
      .array(z.string().max(512).regex(HTTP_URL_PATTERN, 'must be an http(s) URL such as https://vault.vault.svc:8200'))
      .max(100)
      .describe(
        'Addresses sidekey.io/vault-addr may name (compared by scheme, host and port), besides addr. Empty: any address (http only with allowHttp); set it so that a pod cannot send its token to a server of its choosing.',
      )
      .default([]),
    allowSystemPaths: z
      .boolean()
      .describe(
        "Allow vault references that can reach Vault's auth/, sys/ or identity/ backend: a segment so named anywhere but last (a namespace may come before it: team-a/sys/...), or a vault-namespace with one. Off: refused, since the agent would write what its own token may read there (auth/token/lookup-self: the token itself; identity/oidc/token: a signed identity token) into an app file.",
      )
      .default(false),
    role: z
      .string()
      .regex(VAULT_ROLE)
      .optional()
      .describe('Default Vault role; absent means the pod must set sidekey.io/vault-role (kubernetes and jwt auth).'),
    namespace: z
      .string()
      .max(128)
      .regex(VAULT_NAMESPACE)
      .optional()
      .describe('Default Vault Enterprise / OpenBao namespace.'),
    caCert: z
      .string()
      .max(MAX_CA_PEM_BYTES)
      .superRefine((pem, ctx) => {
        const problem = caPemProblem(pem, 'vault.caCert');
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional()
      .describe(
        `PEM of the CA (and intermediates) that sign the Vault server's certificate, for a Vault behind a private CA; carried in every Vault agent's configuration, so no object is needed in any namespace (helm: --set-file config.vault.caCert=ca.pem). Checked at start: CA certificates only, at most ${MAX_CA_PEM_BYTES / 1024} KiB. Absent: the agent image's public roots. sidekey.io/vault-ca overrides it per pod.`,
      ),
    caFrom: caObjectSchema.optional(),
  })
  .refine((v) => v.caCert === undefined || v.caFrom === undefined, {
    error: 'give vault.caCert or vault.caFrom, not both',
    path: ['caFrom'],
  })
  .describe('Vault/OpenBao defaults.');

export const vaultSettings = { vault: vaultSchema.prefault({}) };
export type VaultDefaults = z.infer<typeof vaultSchema>;
