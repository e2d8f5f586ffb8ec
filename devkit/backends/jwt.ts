// Minimal RS256 JWT minting for tests: an issuer key pair, tokens with chosen claims. Used by the OpenBao
// jwt auth setup and as the service-account token of the kubernetes auth setup.
import { createSign, generateKeyPairSync } from 'node:crypto';

export interface JwtIssuer {
  /** PEM public key (for jwt_validation_pubkeys). */
  readonly publicKeyPem: string;
  /** A signed token; `iat`, `nbf` and `exp` (1 h) are added unless given. */
  mint(claims: Readonly<Record<string, unknown>>): string;
}

const b64url = (data: string | Buffer): string => Buffer.from(data).toString('base64url');

export function createJwtIssuer(): JwtIssuer {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    mint(claims): string {
      const now = Math.floor(Date.now() / 1000);
      const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
      const body = b64url(JSON.stringify({ iat: now, nbf: now - 5, exp: now + 3600, ...claims }));
      const signature = createSign('RSA-SHA256').update(`${header}.${body}`).sign(privateKey);
      return `${header}.${body}.${b64url(signature)}`;
    },
  };
}
