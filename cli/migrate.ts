// `sidekey migrate`: rewrites the vault-k8s (Vault Agent Injector) annotations of manifests into Sidekey's, on
// Pods and the pod templates of every workload kind render knows. The YAML is edited in place, so other
// annotations, comments and the document order stay; the rewritten manifests go to stdout (or back to their
// files with --in-place), the report of what was left untranslated and why to stderr. Exit codes: 0 every
// vault-k8s annotation translated, 1 some left untranslated, 2 bad input or usage.
import { writeFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, parseAllDocuments, Scalar } from 'yaml';
import type { Document, Pair, YAMLMap } from 'yaml';
import { TEMPLATE_PATHS, manifestName } from '../injector/workloads.ts';
import { parseCommandLine } from './args.ts';
import { expandPaths, processIo, readError } from './manifests.ts';
import type { ManifestIo } from './manifests.ts';
import { migrateAnnotations } from './migrate-annotations.ts';
import type { AnnotationResult } from './migrate-annotations.ts';
import type { DefaultTemplate } from './migrate-template.ts';

const USAGE = `usage: sidekey migrate [options] FILE|DIR|- [...]

Rewrites the vault.hashicorp.com/ (vault-k8s) annotations of Pods and workload pod templates into
sidekey.io/ annotations and prints the manifests; other annotations, comments and order are kept. What has
no Sidekey form (arbitrary consul-template, agent-inject-command, agent-configmap, ...) is left as it is and
reported on stderr with the reason. Files keep their vault-k8s path: sidekey.io/mount-path is set to
/vault/secrets (or secret-volume-path). Check the result with: sidekey migrate FILE | sidekey lint -
Exit code 0 when every vault-k8s annotation was translated, 1 when some were left, 2 on bad input or usage.

options:
  -f, --filename PATH      a file, a directory (its .yaml, .yml and .json files, recursively) or - for
                           stdin; repeatable. A bare PATH works the same.
  --in-place               write the rewritten manifests back to their files instead of stdout
  --default-template KIND  map (default) or json: the vault-k8s injector's default template for an
                           agent-inject-secret without a template (its -default-template flag)
  --report FORMAT          text (default: a line per annotation left or noted, then the counts) or json
                           (per manifest, every vault-k8s annotation with its outcome, reason and notes)
`;

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  filename: { type: 'string', short: 'f', multiple: true },
  'in-place': { type: 'boolean' },
  'default-template': { type: 'string' },
  report: { type: 'string' },
} as const;

interface Job {
  readonly paths: readonly string[];
  readonly inPlace: boolean;
  readonly defaultTemplate: DefaultTemplate;
  /** The report as one JSON document on stderr (--report json). */
  readonly jsonReport: boolean;
}

interface Counts {
  manifests: number;
  translated: number;
  untranslated: number;
}

/** One input file's outcome: its new text when a manifest in it changed, or the reason it is bad input. */
type FileOutcome =
  | { readonly kind: 'bad'; readonly problem: string }
  | { readonly kind: 'ok'; readonly text: string; readonly changed: boolean; readonly report: readonly Entry[] };

/** The report of one manifest: what became of each of its vault-k8s annotations. */
interface Entry {
  readonly file: string;
  readonly manifest: string;
  readonly annotations: readonly AnnotationResult[];
}

function parseCli(argv: readonly string[], io: ManifestIo): Job | number {
  const usageError = (message: string): number => {
    io.stderr(`sidekey migrate: ${message}\n${USAGE}`);
    return 2;
  };
  const parsed = parseCommandLine(argv, OPTIONS, true);
  if (!parsed.ok) return usageError(parsed.error);
  const { values } = parsed;
  if (values.help === true) {
    io.stdout(USAGE);
    return 0;
  }
  const paths = [...(values.filename ?? []), ...parsed.positionals];
  if (paths.length === 0) return usageError('name the manifests: FILE, DIR or - for stdin');
  const defaultTemplate = values['default-template'] ?? 'map';
  if (defaultTemplate !== 'map' && defaultTemplate !== 'json')
    return usageError(`--default-template must be map or json, not "${defaultTemplate}"`);
  const inPlace = values['in-place'] === true;
  if (inPlace && paths.includes('-')) return usageError('--in-place cannot write back to stdin');
  const report = values.report ?? 'text';
  if (report !== 'text' && report !== 'json') return usageError(`--report must be text or json, not "${report}"`);
  return { paths, inPlace, defaultTemplate, jsonReport: report === 'json' };
}

/** Where a manifest of `kind` keeps the annotations of its pod, or undefined for other kinds. */
function annotationsPath(kind: string): readonly string[] | undefined {
  if (kind === 'Pod') return ['metadata', 'annotations'];
  const template = Object.hasOwn(TEMPLATE_PATHS, kind) ? TEMPLATE_PATHS[kind] : undefined;
  return template === undefined ? undefined : [...template, 'metadata', 'annotations'];
}

/** A new annotation pair: values quoted (annotations are strings), several lines as a literal block. */
function newPair(doc: Document, flow: boolean, key: string, value: string): Pair {
  const k = new Scalar(key);
  if (flow) k.type = 'QUOTE_DOUBLE';
  const v = new Scalar(value);
  v.type = !flow && value.includes('\n') ? 'BLOCK_LITERAL' : 'QUOTE_DOUBLE';
  return doc.createPair(k, v);
}

/** The string annotations of a YAML map (a scalar of another type as YAML reads it, which kubectl would refuse). */
function plainAnnotations(map: YAMLMap): Record<string, string> {
  const plain: Record<string, string> = {};
  for (const pair of map.items) {
    if (isScalar(pair.key) && isScalar(pair.value)) plain[String(pair.key.value)] = String(pair.value.value);
  }
  return plain;
}

/** Rewrites one annotations map in place: the new pairs where the first replaced one was, its comment kept. */
function rewrite(
  doc: Document,
  map: YAMLMap,
  add: readonly (readonly [string, string])[],
  remove: ReadonlySet<string>,
): void {
  const keyOf = (pair: Pair): string => (isScalar(pair.key) ? String(pair.key.value) : '');
  const at = map.items.findIndex((p) => remove.has(keyOf(p)));
  const first = map.items[at];
  const pairs = add.map(([k, v]) => newPair(doc, map.flow === true, k, v));
  const comment = first !== undefined && isScalar(first.key) ? first.key.commentBefore : undefined;
  const firstNew = pairs[0];
  if (comment !== undefined && comment !== null && firstNew !== undefined && isScalar(firstNew.key))
    firstNew.key.commentBefore = comment;
  const kept = map.items.filter((p) => !remove.has(keyOf(p)));
  const insertAt = at < 0 ? kept.length : map.items.slice(0, at).filter((p) => !remove.has(keyOf(p))).length;
  kept.splice(insertAt, 0, ...pairs);
  map.items = kept;
}

function reportLines({ file, manifest, annotations }: Entry): string[] {
  const where = `${file}: ${manifest}`;
  return annotations.flatMap((r) => [
    ...(r.outcome === 'untranslated' ? [`${where}: ${r.key}: left untranslated: ${r.reason ?? ''}`] : []),
    ...r.notes.filter((n) => n !== '').map((n) => `${where}: ${r.key}: note: ${n}`),
  ]);
}

/** The objects of a document (a List's items, or itself), or why it is not a manifest. */
function manifestObjects(doc: Document.Parsed, index: number): YAMLMap[] | string {
  if (doc.errors.length > 0)
    return `document ${index + 1}: invalid YAML: ${doc.errors[0]?.message.split('\n')[0] ?? ''}`;
  const root: unknown = doc.contents;
  if (root === null) return [];
  if (!isMap(root) || typeof root.get('kind') !== 'string')
    return `document ${index + 1} is not a Kubernetes manifest (a mapping with apiVersion and kind)`;
  const items = root.get('kind') === 'List' ? root.get('items') : undefined;
  return isSeq(items) ? items.items.filter(isMap) : [root];
}

/** Migrates the pod annotations of one object; whether it changed. */
function migrateObject(doc: Document, object: YAMLMap, where: string, job: Job, tally: Tally): boolean {
  const kind = object.get('kind');
  const path = typeof kind === 'string' ? annotationsPath(kind) : undefined;
  const map = path === undefined ? undefined : object.getIn(path, true);
  if (!isMap(map)) return false;
  const migration = migrateAnnotations(plainAnnotations(map), job.defaultTemplate);
  if (migration === undefined) return false;
  tally.counts.manifests += 1;
  for (const r of migration.results) tally.counts[r.outcome] += 1;
  tally.report.push({ file: where, manifest: manifestName(object.toJS(doc)), annotations: migration.results });
  if (migration.remove.size === 0 && migration.add.length === 0) return false;
  rewrite(doc, map, migration.add, migration.remove);
  return true;
}

interface Tally {
  readonly counts: Counts;
  readonly report: Entry[];
}

/** Migrates the manifests of one YAML/JSON text. */
function migrateText(label: string, text: string, job: Job, counts: Counts): FileOutcome {
  const docs = parseAllDocuments(text);
  const tally: Tally = { counts, report: [] };
  let changed = false;
  for (const [index, doc] of docs.entries()) {
    const objects = manifestObjects(doc, index);
    if (typeof objects === 'string') return { kind: 'bad', problem: objects };
    for (const object of objects) changed = migrateObject(doc, object, label, job, tally) || changed;
  }
  if (!changed) return { kind: 'ok', text, changed, report: tally.report };
  const out = docs.map((d) =>
    isMap(d.contents) && d.contents.flow === true
      ? `${JSON.stringify(d.toJS(), null, 2)}\n`
      : d.toString({ lineWidth: 0 }),
  );
  return { kind: 'ok', text: out.join(''), changed, report: tally.report };
}

type Output = { readonly file: string; readonly outcome: Extract<FileOutcome, { kind: 'ok' }> };

/** Reads and migrates one file; its output, or undefined when it is bad input (said on stderr). */
function migrateFile(file: string, io: ManifestIo, job: Job, counts: Counts): Output | undefined {
  const label = file === '-' ? '<stdin>' : file;
  let outcome: FileOutcome;
  try {
    outcome = migrateText(label, io.readFile(file), job, counts);
  } catch (err) {
    // A file that cannot be read, or aliases the yaml package refuses to expand past its bound.
    const code = (err as NodeJS.ErrnoException).code;
    outcome = {
      kind: 'bad',
      problem: code === undefined ? ((err as Error).message.split('\n')[0] ?? '') : `cannot read: ${readError(err)}`,
    };
  }
  if (outcome.kind === 'bad') {
    io.stderr(`${label}: ${outcome.problem}; migrate reads Kubernetes manifests in YAML or JSON\n`);
    return undefined;
  }
  if (!job.jsonReport) for (const line of outcome.report.flatMap(reportLines)) io.stderr(`${line}\n`);
  return { file, outcome };
}

/** The migrated files one after the other, as one YAML stream. */
function stream(outputs: readonly Output[]): string {
  return outputs
    .map(
      ({ outcome: { text } }, i) =>
        `${i > 0 && !text.startsWith('---') ? '---\n' : ''}${text}${text.endsWith('\n') ? '' : '\n'}`,
    )
    .join('');
}

/** Migrates; returns the exit code (0 all translated, 1 some left untranslated, 2 bad input or usage). */
export function run(argv: readonly string[], io: ManifestIo): number {
  const job = parseCli(argv, io);
  if (typeof job === 'number') return job;
  const counts: Counts = { manifests: 0, translated: 0, untranslated: 0 };
  const results: (Output | undefined)[] = [];
  const readable = expandPaths(job.paths, io, (file) => results.push(migrateFile(file, io, job, counts)));
  const outputs = results.filter((r) => r !== undefined);
  if (!readable || outputs.length < results.length) {
    io.stderr('sidekey migrate: nothing written: fix the input above\n');
    return 2;
  }
  if (job.inPlace) {
    for (const { file, outcome } of outputs) if (outcome.changed) writeFileSync(file, outcome.text);
  } else io.stdout(stream(outputs));
  if (job.jsonReport) {
    const manifests = outputs.flatMap(({ outcome }) => outcome.report);
    io.stderr(`${JSON.stringify({ ...counts, manifests }, null, 2)}\n`);
  } else
    io.stderr(
      `sidekey migrate: ${counts.translated + counts.untranslated} vault-k8s annotations in ${counts.manifests} manifest${counts.manifests === 1 ? '' : 's'}: ${counts.translated} translated, ${counts.untranslated} left untranslated\n`,
    );
  return counts.untranslated > 0 ? 1 : 0;
}

export function main(argv: readonly string[]): Promise<number> {
  return Promise.resolve(run(argv, processIo));
}
