// A throwaway self-signed certificate for 127.0.0.1 (ECDSA P-256, one day), made with the system openssl.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LoopbackCert {
  /** PEM certificate; it is its own CA, so it is also what a client trusts. */
  readonly cert: string;
  readonly key: string;
}

export function createLoopbackCert(): LoopbackCert {
  const dir = mkdtempSync(join(tmpdir(), 'sidekey-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
  } catch (error) {
    throw new Error(
      'openssl failed to create a test certificate: install the openssl package (apt-get install -y openssl)',
      { cause: error },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
