// `sidekey render` and `sidekey lint`: the manifests of files, directories (recursively) or stdin as the
// webhook would mutate them (Pods and the pod templates of workloads, `kind: List` items one by one), with
// the same configuration flags. Problems go to stderr as
// `FILE: Kind/name: annotation "sidekey.io/...": what is wrong; example: ...`. render prints the result
// (-o yaml|json); lint prints only problems and warnings. Exit codes: 0 ok, 1 a refused manifest or
// unreadable input (lint --strict: a warning too), 2 usage or configuration.
import { isScalar, parseAllDocuments, stringify, visit } from 'yaml';
import type { Document } from 'yaml';
import type { MutateResult } from '../injector/mutate.ts';
import { formatProblem } from '../injector/problems.ts';
import type { Problem } from '../injector/problems.ts';
import { checkTemplate } from '../injector/template-check.ts';
import { manifestName, mutateManifest } from '../injector/workloads.ts';
import { PARSE_OPTIONS, loadConfig, settingsUsage } from '../webhook/options.ts';
import { reviewContext } from '../webhook/review.ts';
import type { ReviewContext } from '../webhook/review.ts';
import { parseCommandLine } from './args.ts';
import { expandList, expandPaths, processIo, readError } from './manifests.ts';
import type { ManifestIo } from './manifests.ts';

export type Command = 'render' | 'lint';

const SOURCES = `  -f, --filename PATH    a file, a directory (its .yaml, .yml and .json files, recursively) or - for
                         stdin; repeatable. A bare PATH works the same.`;

const USAGE: Readonly<Record<Command, string>> = {
  render: `usage: sidekey render [options] -f FILE|DIR|- [-f ...]

Prints the manifests as the webhook would mutate them (no cluster is consulted: --sidecar-mode changes
nothing here). Exit code 0, 1 when a manifest is refused or unreadable, 2 on a usage error.

options:
${SOURCES}
  -o, --output FORMAT    yaml (default: one document per object, List items expanded) or json (one List)
  --config FILE          YAML/JSON configuration, as given to the webhook
${settingsUsage()}
`,
  lint: `usage: sidekey lint [options] -f FILE|DIR|- [-f ...]

Checks the sidekey.io annotations of the manifests as the webhook would, printing only problems and
warnings: a workload as the check at apply does (a missing AWS region only warns: an identity webhook may
add AWS_REGION to its pods), a Pod as pod admission does. Exit code 0 when all pass, 1 when one is refused (or, with --strict, warned about), 2 on a usage error.

options:
${SOURCES}
  --strict               count warnings as failures
  --config FILE          YAML/JSON configuration, as given to the webhook
${settingsUsage()}
`,
};

const OPTIONS = {
  ...PARSE_OPTIONS,
  filename: { type: 'string', short: 'f', multiple: true },
  output: { type: 'string', short: 'o' },
  strict: { type: 'boolean' },
} as const;

export type RenderIo = ManifestIo;

interface Job {
  readonly command: Command;
  readonly paths: readonly string[];
  readonly ctx: ReviewContext;
  readonly output: 'yaml' | 'json';
  readonly strict: boolean;
}

function parseCli(command: Command, argv: readonly string[], io: RenderIo): Job | number {
  const usageError = (message: string): number => {
    io.stderr(`sidekey ${command}: ${message}\n${USAGE[command]}`);
    return 2;
  };
  const parsed = parseCommandLine(argv, OPTIONS, true);
  if (!parsed.ok) return usageError(parsed.error);
  const { values } = parsed;
  if (values.help === true) {
    io.stdout(USAGE[command]);
    return 0;
  }
  const paths = [...(values.filename ?? []), ...parsed.positionals];
  if (paths.length === 0) return usageError('name the manifests with -f FILE|DIR|-');
  const output = values.output ?? 'yaml';
  if (command === 'lint' && values.output !== undefined) return usageError('lint prints no manifests: drop -o');
  if (command === 'render' && values.strict !== undefined) return usageError('--strict belongs to sidekey lint');
  if (output !== 'yaml' && output !== 'json') return usageError(`-o must be yaml or json, not "${output}"`);
  const flags = Object.fromEntries(Object.entries(values).filter(([k]) => k in PARSE_OPTIONS)) as Record<
    string,
    string | boolean | undefined
  >;
  const loaded = loadConfig({ flags, env: io.env, readFile: io.readFile });
  if (!loaded.ok) {
    io.stderr(`sidekey ${command}: ${loaded.error}\n`);
    return 2;
  }
  return { command, paths, output, strict: values.strict === true, ctx: reviewContext(loaded.value) };
}

interface Outcome {
  readonly manifests: unknown[];
  failed: boolean;
  warned: boolean;
}

function renderFile(file: string, io: RenderIo, job: Job, outcome: Outcome): void {
  let text: string;
  try {
    text = io.readFile(file);
  } catch (err) {
    io.stderr(`${file}: cannot read: ${readError(err)}\n`);
    outcome.failed = true;
    return;
  }
  const label = file === '-' ? '<stdin>' : file;
  for (const [index, doc] of parseAllDocuments(text).entries()) {
    if (doc.errors.length > 0) {
      io.stderr(`${label}: document ${index + 1}: invalid YAML: ${doc.errors[0]?.message.split('\n')[0] ?? ''}\n`);
      outcome.failed = true;
      continue;
    }
    const manifest: unknown = doc.toJS({ maxAliasCount: 100 });
    if (manifest === null || manifest === undefined) continue;
    const unquoted = unquotedValues(doc);
    if (unquoted.length > 0) {
      for (const line of unquoted) io.stderr(`${label}: ${manifestName(manifest)}: ${line}\n`);
      outcome.failed = true;
      continue;
    }
    for (const item of expandList(manifest)) {
      const report = (line: string): void => {
        io.stderr(`${label}: ${manifestName(item)}: ${line}\n`);
      };
      const rendered = renderManifest(item, job, report, outcome);
      if (rendered === undefined) outcome.failed = true;
      else outcome.manifests.push(rendered);
    }
  }
}

/**
 * `sidekey.io/...: true` or `: 0400` unquoted: YAML reads a boolean or a number (0400 even as the decimal 400),
 * which kubectl refuses (annotations are strings) and the webhook never sees. One line per such key.
 */
function unquotedValues(doc: Document): string[] {
  const lines: string[] = [];
  visit(doc, {
    Pair(_, pair) {
      const key = isScalar(pair.key) ? pair.key.value : undefined;
      if (typeof key !== 'string' || !key.startsWith('sidekey.io/') || !isScalar(pair.value)) return;
      const { value } = pair.value;
      if (typeof value === 'string') return;
      const source = pair.value.source ?? String(value);
      const what = value === null ? 'null' : typeof value === 'boolean' ? 'a boolean' : 'a number';
      lines.push(
        `annotation ${JSON.stringify(key)}: YAML reads the unquoted ${source} as ${what}, but annotation values are strings (kubectl refuses it); quote it; example: ${key}: ${JSON.stringify(source)}`,
      );
    },
  });
  return lines;
}

/** What admission says of a manifest: the problems that refuse it and the warnings it is admitted with. */
interface Verdict {
  readonly problems: readonly Problem[];
  readonly warnings: readonly string[];
}

/**
 * lint answers a workload as the validating webhook does (checkTemplate, the same rule): what pod creation may
 * still add, an identity webhook's AWS_REGION, only warns. render answers as pod admission does: it prints the
 * agent, which needs every setting now.
 */
function verdictOf(manifest: unknown, mutation: MutateResult, job: Job): Verdict {
  const kind = (manifest as { kind?: unknown }).kind;
  if (job.command === 'lint' && typeof kind === 'string' && kind !== 'Pod') {
    const check = checkTemplate(kind, manifest, job.ctx);
    if (check.kind === 'skipped') return { problems: [], warnings: [] };
    return { problems: check.kind === 'denied' ? check.problems : [], warnings: check.warnings };
  }
  if (mutation.kind === 'skipped') return { problems: [], warnings: [] };
  return { problems: mutation.kind === 'denied' ? mutation.problems : [], warnings: mutation.warnings };
}

/** The manifest to print, or undefined when it is refused; problems, warnings and notes go to `report`. */
function renderManifest(manifest: unknown, job: Job, report: (line: string) => void, outcome: Outcome): unknown {
  const { ctx } = job;
  const namespace = (manifest as { metadata?: { namespace?: unknown } }).metadata?.namespace;
  if (typeof namespace === 'string' && ctx.excludedNamespaces.has(namespace)) {
    if (mutateManifest(manifest, ctx).kind !== 'other')
      report(`note: namespace "${namespace}" is excluded from injection: the webhook never sees this pod`);
    return manifest;
  }
  const result = mutateManifest(manifest, ctx);
  if (result.kind === 'other') return manifest;
  const { problems, warnings } = verdictOf(manifest, result.result, job);
  for (const p of problems) report(formatProblem(p));
  for (const w of warnings) report(`warning: ${w}`);
  if (warnings.length > 0) outcome.warned = true;
  if (problems.length > 0) return undefined;
  return result.kind === 'mutated' ? result.manifest : manifest;
}

/** Renders or lints; returns the exit code (0 ok, 1 bad input, 2 usage or configuration). */
export function run(command: Command, argv: readonly string[], io: RenderIo): number {
  const job = parseCli(command, argv, io);
  if (typeof job === 'number') return job;
  const outcome: Outcome = { manifests: [], failed: false, warned: false };
  const readable = expandPaths(job.paths, io, (file) => {
    renderFile(file, io, job, outcome);
  });
  if (!readable) outcome.failed = true;
  if (command === 'lint') return outcome.failed || (job.strict && outcome.warned) ? 1 : 0;
  if (outcome.failed) return 1;
  if (job.output === 'json')
    io.stdout(`${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: outcome.manifests }, null, 2)}\n`);
  else io.stdout(outcome.manifests.map((m) => stringify(m, { lineWidth: 0 })).join('---\n'));
  return 0;
}

export function render(argv: readonly string[], io: RenderIo): number {
  return run('render', argv, io);
}

export function main(argv: readonly string[]): Promise<number> {
  return Promise.resolve(run('render', argv, processIo));
}

export function lintMain(argv: readonly string[]): Promise<number> {
  return Promise.resolve(run('lint', argv, processIo));
}
