// A test CA and leaf certificates signed by it (ECDSA P-256, one day), made with the openssl CLI in a temp
// dir: what a client trusts stays the same while the server's leaf rotates.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  /** PEM of the CA certificate (what clients trust). */
  readonly caCert: string;
  /** Issues a leaf for 127.0.0.1 and localhost; `cn` makes leaves distinguishable. */
  issue(cn: string): { readonly cert: string; readonly key: string };
  dispose(): void;
}

function openssl(args: readonly string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    throw new Error(`openssl ${args[0] ?? ''} failed: install the openssl package (apt-get install -y openssl)`, {
      cause: error,
    });
  }
}

export function createTestCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'sidekey-ca-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(
    ['req', '-x509', ...ec, '-days', '1', '-subj', '/CN=sidekey test CA', '-keyout', 'ca.key', '-out', 'ca.crt'],
    dir,
  );
  writeFileSync(
    join(dir, 'leaf.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n',
  );
  let serial = 0;
  return {
    caCert: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    issue(cn) {
      serial += 1;
      openssl(['req', ...ec, '-subj', `/CN=${cn}`, '-keyout', `leaf${serial}.key`, '-out', `leaf${serial}.csr`], dir);
      openssl(
        [
          'x509',
          '-req',
          '-in',
          `leaf${serial}.csr`,
          '-CA',
          'ca.crt',
          '-CAkey',
          'ca.key',
          '-set_serial',
          String(1000 + serial),
          '-days',
          '1',
          '-extfile',
          'leaf.ext',
          '-out',
          `leaf${serial}.crt`,
        ],
        dir,
      );
      return {
        cert: readFileSync(join(dir, `leaf${serial}.crt`), 'utf8'),
        key: readFileSync(join(dir, `leaf${serial}.key`), 'utf8'),
      };
    },
    dispose() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A temp directory holding a leaf issued by `ca` as tls.crt and tls.key (the webhook's tlsCert and tlsKey). */
export function leafFiles(
  ca: TestCa,
  cn: string,
): { readonly dir: string; readonly tlsCert: string; readonly tlsKey: string } {
  const dir = mkdtempSync(join(tmpdir(), `sidekey-${cn}-`));
  const leaf = ca.issue(cn);
  writeFileSync(join(dir, 'tls.crt'), leaf.cert);
  writeFileSync(join(dir, 'tls.key'), leaf.key);
  return { dir, tlsCert: join(dir, 'tls.crt'), tlsKey: join(dir, 'tls.key') };
}
