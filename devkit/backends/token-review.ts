// A tiny stand-in for the kube-apiserver's TokenReview endpoint (POST /apis/authentication.k8s.io/v1/tokenreviews),
// so OpenBao's real kubernetes auth method can run without a cluster. It authenticates exactly the
// service-account tokens it minted (signed JWTs with the kubernetes.io claims), like a real apiserver would.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createJwtIssuer } from './jwt.ts';
import { createLoopbackCert } from '../tls.ts';

export interface TokenReviewServer {
  /** https://127.0.0.1:PORT, for auth/kubernetes/config kubernetes_host. */
  readonly url: string;
  /** PEM CA of the server (kubernetes_ca_cert). */
  readonly caPem: string;
  /** Reviews answered so far (each kubernetes login makes one). */
  reviews(): number;
  /** A projected service-account token for namespace/name that this server will authenticate. */
  mintServiceAccountToken(namespace: string, name: string): string;
  /** Makes an issued token fail review from now on (like a deleted service account). */
  invalidate(token: string): void;
  stop(): Promise<void>;
}

const AUDIENCE = 'https://kubernetes.default.svc.cluster.local';

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startTokenReviewServer(): Promise<TokenReviewServer> {
  const issuer = createJwtIssuer();
  const known = new Map<string, { namespace: string; name: string; uid: string }>();
  let count = 0;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = JSON.parse(await readBody(req)) as { spec?: { token?: string } };
    count += 1;
    const identity = known.get(body.spec?.token ?? '');
    const status =
      identity === undefined
        ? { authenticated: false, error: 'token not recognised' }
        : {
            authenticated: true,
            audiences: [AUDIENCE],
            user: {
              username: `system:serviceaccount:${identity.namespace}:${identity.name}`,
              uid: identity.uid,
              groups: ['system:serviceaccounts', `system:serviceaccounts:${identity.namespace}`],
            },
          };
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', status }));
  };
  const tls = createLoopbackCert();
  const server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    if (req.method !== 'POST' || req.url !== '/apis/authentication.k8s.io/v1/tokenreviews') {
      res.writeHead(404).end();
      return;
    }
    handle(req, res).catch(() => res.writeHead(400).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    caPem: tls.cert,
    reviews: () => count,
    mintServiceAccountToken(namespace, name): string {
      const uid = randomUUID();
      const token = issuer.mint({
        iss: 'https://kubernetes.default.svc.cluster.local',
        sub: `system:serviceaccount:${namespace}:${name}`,
        aud: [AUDIENCE],
        'kubernetes.io': { namespace, serviceaccount: { name, uid } },
      });
      known.set(token, { namespace, name, uid });
      return token;
    },
    invalidate(token): void {
      known.delete(token);
    },
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => {
          r();
        });
      }),
  };
}
