// Reading back what the image assembler wrote, the way a container runtime does: the docker-archive's
// manifest and config, each layer checked against its diff ID and unpacked in order by GNU tar (as root, so
// owners and modes are those of the layer).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageConfig } from './images.ts';

export interface UnpackedImage {
  /** The layers unpacked in order: the container's root filesystem. */
  readonly rootfs: string;
  readonly config: ImageConfig;
  readonly repoTags: readonly string[];
  /** How many layer tars the archive holds. */
  readonly layers: number;
}

interface ArchiveManifest {
  readonly Config: string;
  readonly RepoTags: readonly string[];
  readonly Layers: readonly string[];
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Unpacks a docker-archive into dir/rootfs (dir must exist); throws if a layer does not match its diff ID. */
export function unpackImage(archive: string, dir: string): UnpackedImage {
  const raw = join(dir, 'archive');
  const rootfs = join(dir, 'rootfs');
  mkdirSync(raw);
  mkdirSync(rootfs);
  // The image holds no entry for / itself; a runtime's root directory is 0755, so any user can enter it.
  chmodSync(rootfs, 0o755);
  execFileSync('tar', ['-xf', archive, '-C', raw]);
  const manifests = JSON.parse(readFileSync(join(raw, 'manifest.json'), 'utf8')) as readonly ArchiveManifest[];
  if (manifests.length !== 1) throw new Error(`${archive}: ${manifests.length} images in manifest.json, expected one`);
  const [manifest] = manifests as [ArchiveManifest];
  const image = JSON.parse(readFileSync(join(raw, manifest.Config), 'utf8')) as { config: ImageConfig; rootfs: { diff_ids: readonly string[] } };
  manifest.Layers.forEach((layer, i) => {
    const digest = `sha256:${sha256(join(raw, layer))}`;
    if (digest !== image.rootfs.diff_ids[i]) throw new Error(`${archive}: layer ${layer} is ${digest}, the config says ${String(image.rootfs.diff_ids[i])}`);
    execFileSync('tar', ['-xf', join(raw, layer), '-C', rootfs, '--numeric-owner', '--same-owner', '--same-permissions']);
  });
  if (image.rootfs.diff_ids.length !== manifest.Layers.length) throw new Error(`${archive}: the config lists ${image.rootfs.diff_ids.length} layers, the manifest ${manifest.Layers.length}`);
  rmSync(raw, { recursive: true, force: true });
  return { rootfs, config: image.config, repoTags: manifest.RepoTags, layers: manifest.Layers.length };
}
