// The CA an agent trusts for an https Vault with a private CA. Two ways in, one check each:
// - PEM text (the webhook's vault.caCert), carried in the agent configuration: no object in any namespace, and
//   `sidekey render` shows it; bounded so that the configuration stays far below its 128 KiB;
// - a ConfigMap or Secret key in the pod's namespace (the webhook's vault.caFrom, or sidekey.io/vault-ca per
//   pod), mounted read-only into the agent only: the trust-manager way, one Bundle synced to every namespace.
// A CA certificate is public, but a PEM paste can hold a private key by mistake: messages never echo the text.
import { X509Certificate } from 'node:crypto';

/** The agent's mount of a CA object, and the file it reads there. */
export const VAULT_CA_VOLUME = 'sidekey-vault-ca';
export const VAULT_CA_DIR = '/sidekey/vault-ca';
/** The key read when a CA source names none: cert-manager's and trust-manager's usual one. */
export const DEFAULT_CA_KEY = 'ca.crt';
export const VAULT_CA_FILE = `${VAULT_CA_DIR}/${DEFAULT_CA_KEY}`;

/** A bundle of a root and a few intermediates is 2-10 KiB; the agent configuration that carries it has 128 KiB. */
export const MAX_CA_PEM_BYTES = 32 * 1024;
const MAX_CA_CERTIFICATES = 16;

export interface CaObject {
  readonly kind: 'configMap' | 'secret';
  readonly name: string;
  readonly key: string;
}

const OBJECT_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** A ConfigMap or Secret data key (Kubernetes: [-._a-zA-Z0-9]+, at most 253). */
export const OBJECT_KEY = /^[-._a-zA-Z0-9]{1,253}$/;

/** `configmap:<name>[#<key>]` or `secret:<name>[#<key>]` (the sidekey.io/vault-ca grammar). */
export function parseCaObject(
  text: string,
): { readonly ok: true; readonly ca: CaObject } | { readonly ok: false; readonly problem: string } {
  const match = /^(configmap|secret):([^#]*)(?:#(.*))?$/.exec(text);
  if (match === null)
    return {
      ok: false,
      problem:
        "must name a ConfigMap or Secret in the pod's namespace: configmap:<name>[#<key>] or secret:<name>[#<key>] (the key defaults to ca.crt)",
    };
  const [, kind, name = '', key = DEFAULT_CA_KEY] = match;
  if (!OBJECT_NAME.test(name))
    return {
      ok: false,
      problem: `${kind === 'secret' ? 'the Secret' : 'the ConfigMap'} name must be a DNS subdomain (lower-case letters, digits, "-" and ".")`,
    };
  if (!OBJECT_KEY.test(key)) return { ok: false, problem: 'the key after "#" must be a data key of [-._a-zA-Z0-9]' };
  return { ok: true, ca: { kind: kind === 'secret' ? 'secret' : 'configMap', name, key } };
}

export function formatCaObject(ca: CaObject): string {
  return `${ca.kind === 'secret' ? 'secret' : 'configmap'}:${ca.name}#${ca.key}`;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/**
 * What is wrong with a PEM CA bundle, or undefined when every block is a CA certificate: the webhook refuses
 * its configuration with this at start, the agent its CA file. `what` names the source (e.g. "vault.caCert").
 */
export function caPemProblem(pem: string, what: string): string | undefined {
  const size = Buffer.byteLength(pem);
  if (size > MAX_CA_PEM_BYTES)
    return `${what} is ${Math.ceil(size / 1024)} KiB, over the ${MAX_CA_PEM_BYTES / 1024} KiB a CA bundle may have here: give only the CA (and intermediates) that sign the Vault server's certificate, not a whole trust store`;
  const blocks = [...pem.matchAll(BLOCK)];
  if (blocks.length === 0)
    return `${what} holds no PEM certificate: give the CA as -----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----`;
  if (blocks.length > MAX_CA_CERTIFICATES)
    return `${what} holds ${blocks.length} PEM blocks, at most ${MAX_CA_CERTIFICATES} are read`;
  for (const [index, block] of blocks.entries()) {
    const label = block[1] ?? '';
    const which = `${what}, PEM block ${index + 1}`;
    if (label.includes('PRIVATE KEY'))
      return `${which} is a private key: remove it (only the CA certificate belongs here) and treat that key as exposed`;
    if (label !== 'CERTIFICATE') return `${which} is a "${label.slice(0, 40)}", not a CERTIFICATE`;
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(block[0]);
    } catch {
      return `${which} is not a readable X.509 certificate (cut short or mangled?)`;
    }
    if (!certificate.ca)
      return `${which} is not a CA certificate (basicConstraints CA:FALSE, e.g. the server's own certificate): give the CA that signed the Vault server's certificate`;
  }
  return undefined;
}
