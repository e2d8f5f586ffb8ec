// What stands in for container images when the pod runner runs a pod: the real `sidekey agent` for the
// agent image, the stand-in apps of devkit/apps for app images, and a shell image for ad-hoc containers.
import { join } from 'node:path';
import { NODE_BIN, PROJECT_ROOT } from './pod-runner.ts';
import type { Image } from './pod-spec.ts';

export const APP_IMAGES = {
  node: 'sidekey-test/reader-node:1',
  python: 'sidekey-test/reader-python:1',
  shell: 'sidekey-test/shell:1',
} as const;

/** The repository part of an image reference (no registry port confusion: the tag is after the last "/"). */
function repositoryName(image: string): string {
  const withoutDigest = image.split('@')[0] ?? image;
  const last = withoutDigest.lastIndexOf('/');
  const colon = withoutDigest.lastIndexOf(':');
  const repo = colon > last ? withoutDigest.slice(0, colon) : withoutDigest;
  return repo.slice(repo.lastIndexOf('/') + 1);
}

export interface ImageOptions {
  /** ENV baked into the agent image (e.g. a test backend's endpoint override). */
  readonly agentEnv?: Readonly<Record<string, string>>;
  /** Host paths baked into the agent image (e.g. the file store directory). */
  readonly agentBinds?: readonly string[];
  /** ENV baked into the app images. */
  readonly appEnv?: Readonly<Record<string, string>>;
}

/** The image mapping for runPod: throws for an image no test expects. */
export function testImages(options: ImageOptions = {}): (image: string) => Image {
  return (image) => {
    const repo = repositoryName(image);
    if (repo === 'sidekey-agent') {
      // Shaped like Dockerfile.agent: the program is the entrypoint, with no CMD for a container's args to replace.
      return {
        entrypoint: [NODE_BIN, join(PROJECT_ROOT, 'cli', 'sidekey.ts'), 'agent'],
        env: options.agentEnv ?? {},
        binds: options.agentBinds ?? [],
      };
    }
    if (image === APP_IMAGES.node)
      return { entrypoint: [NODE_BIN, join(PROJECT_ROOT, 'devkit', 'apps', 'reader.ts')], env: options.appEnv ?? {} };
    if (image === APP_IMAGES.python)
      return {
        entrypoint: ['/usr/bin/python3', join(PROJECT_ROOT, 'devkit', 'apps', 'reader.py')],
        env: options.appEnv ?? {},
      };
    if (image === APP_IMAGES.shell) return { entrypoint: ['/bin/sh', '-c'] };
    throw new Error(`the pod runner has no mapping for image "${image}"`);
  };
}
