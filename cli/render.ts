// `sidekey render FILE|-`: prints the manifests as the webhook would mutate them (Pods and the pod templates
// of workloads), with the same configuration flags. Problems go to stderr as
// `FILE: Kind/name: annotation "sidekey.io/...": what is wrong; example: ...` and the exit code is 1.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import { formatProblem } from '../injector/problems.ts';
import { manifestName, mutateManifest } from '../injector/workloads.ts';
import { PARSE_OPTIONS, loadConfig, settingsUsage } from '../webhook/options.ts';
import { reviewContext } from '../webhook/review.ts';
import type { ReviewContext } from '../webhook/review.ts';

const USAGE = `usage: sidekey render [--config FILE] [options] FILE|-

Prints the YAML manifests of FILE (or stdin) as the webhook would mutate them. --sidecar-mode auto means
native here (no cluster is consulted).

options:
  --config FILE          YAML/JSON configuration, as given to the webhook
${settingsUsage()}
`;

export interface RenderIo {
  readonly readFile: (path: string) => string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

const processIo: RenderIo = {
  readFile: (path) => readFileSync(path === '-' ? 0 : path, 'utf8'),
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

interface Job {
  readonly file: string;
  readonly ctx: ReviewContext;
}

function parseCli(argv: readonly string[], io: RenderIo): Job | number {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: PARSE_OPTIONS, strict: true, allowPositionals: true });
  } catch (err) {
    io.stderr(`sidekey render: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help === true) {
    io.stdout(USAGE);
    return 0;
  }
  const [file, ...extra] = parsed.positionals;
  if (file === undefined || extra.length > 0) {
    io.stderr(USAGE);
    return 2;
  }
  const loaded = loadConfig({ flags: parsed.values, env: io.env, readFile: io.readFile });
  if (!loaded.ok) {
    io.stderr(`sidekey render: ${loaded.error}\n`);
    return 2;
  }
  return { file, ctx: reviewContext(loaded.value, loaded.value.sidecarMode !== 'classic') };
}

/** Renders; returns the exit code (0 ok, 1 bad input, 2 usage or configuration). */
export function render(argv: readonly string[], io: RenderIo): number {
  const job = parseCli(argv, io);
  if (typeof job === 'number') return job;
  let text: string;
  try {
    text = io.readFile(job.file);
  } catch (err) {
    io.stderr(`${job.file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? 'error'}\n`);
    return 1;
  }
  const label = job.file === '-' ? '<stdin>' : job.file;
  const out: string[] = [];
  let failed = false;
  for (const [index, doc] of parseAllDocuments(text).entries()) {
    if (doc.errors.length > 0) {
      io.stderr(`${label}: document ${index + 1}: invalid YAML: ${doc.errors[0]?.message.split('\n')[0] ?? ''}\n`);
      failed = true;
      continue;
    }
    const manifest: unknown = doc.toJS({ maxAliasCount: 100 });
    if (manifest === null || manifest === undefined) continue;
    const rendered = renderManifest(manifest, job.ctx, (line) => {
      io.stderr(`${label}: ${manifestName(manifest)}: ${line}\n`);
    });
    if (rendered === undefined) failed = true;
    else out.push(stringify(rendered, { lineWidth: 0 }));
  }
  if (failed) return 1;
  io.stdout(out.join('---\n'));
  return 0;
}

/** The manifest to print, or undefined when it is refused; problems and warnings go to `report`. */
function renderManifest(manifest: unknown, ctx: ReviewContext, report: (line: string) => void): unknown {
  const namespace = (manifest as { metadata?: { namespace?: unknown } }).metadata?.namespace;
  if (typeof namespace === 'string' && ctx.excludedNamespaces.has(namespace)) return manifest;
  const result = mutateManifest(manifest, ctx);
  if (result.kind === 'other') return manifest;
  const outcome = result.result;
  if (outcome.kind === 'denied') for (const p of outcome.problems) report(formatProblem(p));
  if (outcome.kind !== 'skipped') for (const w of outcome.warnings) report(`warning: ${w}`);
  if (outcome.kind === 'denied') return undefined;
  return result.kind === 'mutated' ? result.manifest : manifest;
}

export function main(argv: readonly string[]): Promise<number> {
  return Promise.resolve(render(argv, processIo));
}
