// Issues Vault/OpenBao PKI certificates: a POST to <mount>/issue/<role> with the reference's parameters (checked
// at admission). One issue answers every file of the certificate (certificate, private_key, issuing_ca, ca_chain,
// serial_number), so the key always matches the certificate; the certificate's notAfter tells the refresh loop when
// to issue the next one. A role that refuses the request (a common name outside allowed_domains,
// an IP SAN it does not allow) is ISSUE_REFUSED with Vault's reason, which names the request, never the key.
import { X509Certificate } from 'node:crypto';
import * as z from 'zod/mini';
import type { SecretReference } from '../../../injector/reference.ts';
import { ProviderError } from '../../../agent/provider.ts';
import type { Fetched } from '../../../agent/provider.ts';
import { VaultCallError } from './vault-client.ts';
import type { VaultClient } from './vault-client.ts';
import { fromVaultError } from './vault-errors.ts';
import type { TokenSource } from './vault-session.ts';

const issueAnswer = z.object({
  data: z.object({
    certificate: z.string(),
    private_key: z.string(),
    issuing_ca: z.string(),
    ca_chain: z.nullish(z.array(z.string())),
    serial_number: z.string(),
  }),
});

/** The request body: the canonical `k=v&…` parameters as Vault takes them (alt_names and ip_sans comma lists). */
function bodyOf(query: string): Record<string, string> {
  return Object.fromEntries(
    query.split('&').map((pair) => {
      const eq = pair.indexOf('=');
      return [pair.slice(0, eq), pair.slice(eq + 1)];
    }),
  );
}

function issueError(path: string, error: unknown): ProviderError {
  if (error instanceof VaultCallError && error.status === 400) {
    const role = path.slice(path.lastIndexOf('/') + 1);
    return new ProviderError(
      'ISSUE_REFUSED',
      `vault ${path}: the role "${role}" refused the certificate request (${error.detail || 'no reason given'}); fix the parameters or the role (allowed_domains, allow_subdomains, allow_ip_sans)`,
    );
  }
  return fromVaultError(error);
}

export class VaultIssuer {
  readonly #client: VaultClient;
  readonly #session: TokenSource;

  constructor(client: VaultClient, session: TokenSource) {
    this.#client = client;
    this.#session = session;
  }

  async issue(ref: SecretReference & { readonly query: string }): Promise<Fetched> {
    let data: z.infer<typeof issueAnswer>['data'];
    try {
      ({ data } = await this.#session.withToken((t) =>
        this.#client.write(ref.path, bodyOf(ref.query), t, issueAnswer),
      ));
    } catch (error) {
      throw issueError(ref.path, error);
    }
    let expiresAt: number;
    try {
      expiresAt = new X509Certificate(data.certificate).validToDate.getTime();
    } catch {
      throw new ProviderError('BAD_RESPONSE', `vault ${ref.path}: the issued certificate is not a PEM certificate`);
    }
    const value = {
      certificate: data.certificate,
      private_key: data.private_key,
      issuing_ca: data.issuing_ca,
      // Concatenated PEM, as TLS libraries read a chain file.
      ca_chain: (data.ca_chain ?? [data.issuing_ca]).join('\n'),
      serial_number: data.serial_number,
    };
    return {
      value: { kind: 'object', value },
      version: data.serial_number,
      displayVersion: data.serial_number,
      expiresAt,
    };
  }
}
