// The image assembler (images.ts) on small Dockerfiles: Docker's semantics for ARG, ENV, LABEL, WORKDIR,
// USER, CMD and ENTRYPOINT, COPY's directory rules, --chmod and --chown, the build context's ignore file, and a
// clear refusal, naming the line, of what it does not run.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ROOT } from '../../scripts/build.ts';
import { unpackImage, type UnpackedImage } from './image-runner.ts';
import { AssemblySession, assembleImage, type ImageInfo } from './images.ts';

const work = mkdtempSync(join(tmpdir(), 'sidekey-images-test-'));
const session = new AssemblySession();
after(() => {
  session.close();
  rmSync(work, { recursive: true, force: true });
});

let count = 0;
/** Assembles `lines` as a Dockerfile (with `ignore` as its own .dockerignore) and unpacks the result. */
async function assemble(lines: readonly string[], options: { ignore?: string; buildArgs?: Record<string, string> } = {}): Promise<{ info: ImageInfo; image: UnpackedImage }> {
  const dir = join(work, `case-${(count += 1)}`);
  mkdirSync(dir);
  const dockerfile = join(dir, 'case.Dockerfile');
  writeFileSync(dockerfile, `${lines.join('\n')}\n`);
  if (options.ignore !== undefined) writeFileSync(`${dockerfile}.dockerignore`, options.ignore);
  const info = await assembleImage({ dockerfile, tag: 'sidekey.test/case:1', out: join(dir, 'image.tar'), ...(options.buildArgs === undefined ? {} : { buildArgs: options.buildArgs }) }, session);
  return { info, image: unpackImage(info.archive, dir) };
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
const modeOf = (path: string): string => (statSync(path).mode & 0o7777).toString(8);
const ownerOf = (path: string): string => `${statSync(path).uid}:${statSync(path).gid}`;

void describe('Docker semantics', () => {
  void test('ARG defaults and overrides, ENV, LABEL, USER, EXPOSE, WORKDIR; the archive holds the config it reports, byte for byte the same each time', async () => {
    const lines = [
      'ARG BASE=scratch',
      'FROM ${BASE}',
      'ARG VERSION=0.0.0-dev',
      'ARG REVISION=unknown',
      'ENV APP_VERSION=${VERSION} GREETING="hello world"',
      'LABEL version="${VERSION}" revision=$REVISION',
      'USER 1000:1000',
      'WORKDIR /srv/app',
      'EXPOSE 8080 9090/udp',
      'CMD ["serve"]',
      'ENTRYPOINT ["/bin/app"]',
    ];
    const { info, image } = await assemble(lines, { buildArgs: { VERSION: '1.2.3' } });
    assert.deepEqual(info.config, {
      User: '1000:1000',
      ExposedPorts: { '8080/tcp': {}, '9090/udp': {} },
      Env: ['APP_VERSION=1.2.3', 'GREETING=hello world'],
      Entrypoint: ['/bin/app'],
      // Set earlier in the stage, CMD survives the ENTRYPOINT (Docker drops only an inherited CMD).
      Cmd: ['serve'],
      WorkingDir: '/srv/app',
      Labels: { version: '1.2.3', revision: 'unknown' },
    });
    assert.deepEqual(image.config, info.config);
    assert.deepEqual(image.repoTags, ['sidekey.test/case:1']);
    assert.equal(image.layers, 1, 'scratch has no layer; WORKDIR adds one');
    const again = await assemble(lines, { buildArgs: { VERSION: '1.2.3' } });
    assert.equal(sha256(again.info.archive), sha256(info.archive));
    assert.deepEqual([ownerOf(join(image.rootfs, 'srv')), ownerOf(join(image.rootfs, 'srv', 'app')), modeOf(join(image.rootfs, 'srv', 'app'))], ['1000:1000', '1000:1000', '755'], 'WORKDIR creates its directories as the USER');
  });

  void test('COPY: a directory\'s contents, a file into a directory or onto a path, relative to WORKDIR; --chmod and --chown; the ignore file', async () => {
    const { image } = await assemble(
      [
        'FROM gcr.io/distroless/nodejs24-debian13:nonroot',
        'COPY --chmod=0500 --chown=nonroot test/apps/ /apps/',
        'COPY test/apps/reader.ts /one/',
        'COPY test/apps/reader.ts /two/renamed.ts',
        'WORKDIR /work',
        'COPY --chown=1234 test/apps/reader.ts test/apps/secrets-dir.ts sub/',
      ],
      { ignore: '*\n!test/apps/\ntest/apps/*.py\n' },
    );
    const root = image.rootfs;
    assert.deepEqual(readdirSync(join(root, 'apps')).sort(), ['reader.ts', 'secrets-dir.ts'], 'the contents, without the ignored reader.py');
    assert.deepEqual([modeOf(join(root, 'apps')), ownerOf(join(root, 'apps'))], ['500', '65532:65532'], 'the created destination is made like the source directory');
    assert.deepEqual([modeOf(join(root, 'apps', 'reader.ts')), ownerOf(join(root, 'apps', 'reader.ts'))], ['500', '65532:65532']);
    assert.deepEqual(readdirSync(join(root, 'one')), ['reader.ts']);
    assert.deepEqual([modeOf(join(root, 'one')), ownerOf(join(root, 'one'))], ['755', '0:0'], 'a missing parent is 0755 root');
    assert.deepEqual([modeOf(join(root, 'one', 'reader.ts')), ownerOf(join(root, 'one', 'reader.ts'))], [modeOf(join(ROOT, 'test', 'apps', 'reader.ts')), '0:0'], 'the host mode without --chmod');
    assert.ok(statSync(join(root, 'two', 'renamed.ts')).isFile());
    assert.deepEqual(readdirSync(join(root, 'work', 'sub')).sort(), ['reader.ts', 'secrets-dir.ts']);
    assert.equal(ownerOf(join(root, 'work', 'sub', 'reader.ts')), '1234:1234', 'a uid without a group: the uid is the gid');
  });

  void test('what the assembler does not run is refused, naming the Dockerfile line', async () => {
    const base = 'FROM gcr.io/distroless/nodejs24-debian13:nonroot';
    const cases: readonly [readonly string[], RegExp][] = [
      [[base, 'RUN echo hi'], /case\.Dockerfile:2: RUN echo hi: RUN in the final stage: the distroless base has no shell/],
      [['FROM node:24-slim'], /case\.Dockerfile:1: FROM node:24-slim: no stand-in base for this image \(known: gcr\.io\/distroless\/nodejs24-debian13:nonroot, scratch\)/],
      [[base, 'CMD node /app/x.mjs'], /case\.Dockerfile:2: CMD node \/app\/x\.mjs: the shell form needs \/bin\/sh/],
      [[base, 'ENTRYPOINT node'], /case\.Dockerfile:2: ENTRYPOINT node: the shell form/],
      [[base, 'HEALTHCHECK NONE'], /case\.Dockerfile:2: HEALTHCHECK NONE: HEALTHCHECK is not supported/],
      [[base, 'ADD x /x'], /case\.Dockerfile:2: ADD x \/x: ADD is not supported/],
      [[base, 'COPY test/apps/*.ts /apps/'], /wildcards are not supported/],
      [[base, 'COPY README.md /'], /case\.Dockerfile:2: COPY README\.md \/: README\.md is not in the build context \(left out by \.dockerignore\)/],
      [[base, 'COPY --from=build /src/dist/ /app/'], /--from=build: no earlier stage of that name/],
      [['FROM scratch AS other', 'RUN make', base, 'COPY --from=other /x /x'], /case\.Dockerfile:4: .*stage line 1 is not the project build/],
      [[base, 'COPY package.json tsconfig.json /dest'], /with more than one source, the destination must be a directory ending in \//],
      [[base, 'COPY --link package.json /'], /COPY --link is not supported/],
      [[base, 'COPY --chown=nobody:wheel package.json /'], /"wheel" is not in the image's \/etc\/group/],
    ];
    for (const [lines, error] of cases) await assert.rejects(assemble(lines), error, lines.join(' | '));
    await assert.rejects(assemble([base, 'ARG VERSION'], { buildArgs: { VERSOIN: '1' } }), /no ARG declares the build argument\(s\) VERSOIN/);
  });
});
