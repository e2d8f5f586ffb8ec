// The images the test cluster runs, assembled from the project's Dockerfiles (images.ts) and imported into
// the node's containerd: the agent and webhook under the chart's default names (so `helm install` needs no
// image values), the stand-in app, and the pod sandbox's pause image that containerd's config names.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { Cluster } from './cluster.ts';
import { assembleImage } from './images.ts';
import { PAUSE_IMAGE, PROJECT_ROOT } from './layout.ts';

const chart = parse(readFileSync(join(PROJECT_ROOT, 'charts', 'sidekey', 'Chart.yaml'), 'utf8')) as {
  appVersion: string;
};

export const AGENT_IMAGE = `ghcr.io/sidekey/sidekey-agent:${chart.appVersion}`;
export const WEBHOOK_IMAGE = `ghcr.io/sidekey/sidekey-webhook:${chart.appVersion}`;
export const APP_IMAGE = 'sidekey.test/app:1';

const IMAGES: readonly { readonly dockerfile: string; readonly tag: string }[] = [
  { dockerfile: join(PROJECT_ROOT, 'Dockerfile.agent'), tag: AGENT_IMAGE },
  { dockerfile: join(PROJECT_ROOT, 'Dockerfile.webhook'), tag: WEBHOOK_IMAGE },
  { dockerfile: join(PROJECT_ROOT, 'test', 'cluster', 'app.Dockerfile'), tag: APP_IMAGE },
  { dockerfile: join(PROJECT_ROOT, 'test', 'cluster', 'pause.Dockerfile'), tag: PAUSE_IMAGE },
];

/** Assembles every image into <state>/images and imports it; resolves once the node's containerd has them all. */
export async function importProjectImages(
  cluster: Cluster,
  log: (line: string) => void = () => undefined,
): Promise<void> {
  const dir = join(cluster.layout.stateDir, 'images');
  mkdirSync(dir, { recursive: true });
  for (const [index, image] of IMAGES.entries()) {
    const started = Date.now();
    const out = join(dir, `${index}.tar`);
    await assembleImage({ dockerfile: image.dockerfile, tag: image.tag, out });
    await cluster.importImage(out);
    log(`image ${image.tag} assembled and imported in ${Date.now() - started} ms`);
  }
}
