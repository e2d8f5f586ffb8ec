// `npm run package:cli`: the installable `sidekey` CLI as an npm package folder, dist/npm/sidekey/, from the
// bundle `npm run build` writes (dist/sidekey.mjs: the whole CLI with its dependencies, so the package has
// none). The repository's own package.json stays private and points at the TypeScript sources; this one
// ships only built JavaScript, with two names on PATH: `sidekey`, and `kubectl-sidekey` so that
// `kubectl sidekey …` runs it as a kubectl plugin. Then `npm pack dist/npm/sidekey` makes the tarball and
// `npm install -g sidekey-<version>.tgz` installs it (Node 24 or later).
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, ROOT } from './build.ts';

interface RootPackage {
  readonly version: string;
  readonly description: string;
  readonly license: string;
  readonly engines: { readonly node: string };
}

/** The bin shim: the bundle itself has no hashbang (esbuild builds it from a virtual entry). */
const SHIM = "#!/usr/bin/env node\nimport '../sidekey.mjs';\n";

function readme(version: string): string {
  return `# sidekey ${version}

The command line of Sidekey, the Kubernetes secret injector: \`sidekey render\` and \`sidekey lint\` show
offline what the admission webhook does to manifests, with the same configuration flags; \`sidekey webhook\`
and \`sidekey agent\` are what the images run.

    npm install -g sidekey-${version}.tgz     # Node.js 24 or later
    sidekey lint -f k8s/                      # exit 0 ok, 1 problems, 2 usage
    sidekey render -f pod.yaml -o json
    kubectl sidekey --version                 # kubectl finds kubectl-sidekey on PATH

\`sidekey <command> --help\` lists the options. Secret values never appear in its output.
`;
}

/** Writes the package folder from a build output directory; returns the folder. */
export function packageCli(builtDir: string = DIST, outDir: string = join(DIST, 'npm', 'sidekey')): string {
  const bundle = join(builtDir, 'sidekey.mjs');
  if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run "npm run build" first`);
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as RootPackage;
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, 'bin'), { recursive: true });
  // Without its 12 MiB source map: stack traces of a CLI run are readable enough, and the tarball is a third.
  copyFileSync(bundle, join(outDir, 'sidekey.mjs'));
  writeFileSync(join(outDir, 'bin', 'sidekey.mjs'), SHIM, { mode: 0o755 });
  writeFileSync(join(outDir, 'README.md'), readme(root.version));
  const manifest = {
    name: 'sidekey',
    version: root.version,
    description: root.description,
    license: root.license,
    type: 'module',
    engines: root.engines,
    bin: { sidekey: 'bin/sidekey.mjs', 'kubectl-sidekey': 'bin/sidekey.mjs' },
    files: ['bin/', 'sidekey.mjs', 'README.md'],
  };
  writeFileSync(join(outDir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return outDir;
}

if (import.meta.main) process.stdout.write(`${packageCli()}\n`);
