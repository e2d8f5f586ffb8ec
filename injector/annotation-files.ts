// The per-file annotations (secret-, template-, format-, refresh-<name>): grouped by file name, each file read
// into a request or problems naming the annotation at fault.
import { FILE_NAME, MAX_FILES, OUTPUT_FORMATS } from './agent-config.ts';
import type { OutputFormat } from './agent-config.ts';
import type { AnnotationLimits, Findings } from './annotation-spec.ts';
import type { FileRequest } from './annotations.ts';
import { ANNOTATION_PREFIX } from './constants.ts';
import { formatDuration, parseDuration } from './duration.ts';
import { PROBLEM_CODES, example, quote } from './problems.ts';
import { parseReference } from './reference-parse.ts';
import type { SecretReference } from './reference.ts';
import { templateFields, templateSyntaxProblem } from './template-syntax.ts';
import { defined } from './defined.ts';

/** The per-file annotations of one file name, by key (secret, template, format, refresh). */
export interface FileDraft {
  readonly secret?: string;
  readonly template?: string;
  readonly format?: string;
  readonly refresh?: string;
}

export function readRefresh(
  value: string,
  findings: Findings,
  key: string,
  limits: AnnotationLimits,
): number | undefined {
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) {
    findings.add(PROBLEM_CODES.badDuration, key, 'is not a Go-style duration such as 90s, 15m or 1h30m');
    return undefined;
  }
  if (ms < limits.minRefreshMs) {
    findings.add(
      PROBLEM_CODES.badDuration,
      key,
      `is shorter than the floor of ${formatDuration(limits.minRefreshMs)} that protects the backends`,
    );
    return undefined;
  }
  if (ms > 2 ** 31 - 1) {
    findings.add(PROBLEM_CODES.badDuration, key, 'is longer than 24 days (596h)');
    return undefined;
  }
  return ms;
}

export function readFiles(
  perFile: ReadonlyMap<string, FileDraft>,
  findings: Findings,
  limits: AnnotationLimits,
): FileRequest[] {
  const files: FileRequest[] = [];
  if (perFile.size > MAX_FILES) {
    findings.push({
      code: PROBLEM_CODES.tooMany,
      message: `the pod names ${perFile.size} files (secret-, template-, format-, refresh-<name>); the agent writes at most ${MAX_FILES}`,
    });
    return files;
  }
  const lowerNames = new Map<string, string>();
  for (const [name, entry] of perFile) {
    if (findings.full) {
      findings.truncated = true;
      break;
    }
    if (!checkFileName(name, entry, findings)) continue;
    const clash = lowerNames.get(name.toLowerCase());
    if (clash !== undefined) {
      findings.add(
        PROBLEM_CODES.duplicateFile,
        `secret-${name}`,
        `names the same file as "${ANNOTATION_PREFIX}secret-${clash}" on a case-insensitive file system; rename one`,
      );
      continue;
    }
    lowerNames.set(name.toLowerCase(), name);
    const file = readFile(name, entry, findings, limits);
    if (file !== undefined) files.push(file);
  }
  if (files.length === 0 && findings.problems.length === 0) {
    findings.add(
      PROBLEM_CODES.noSecrets,
      'inject',
      `is "true" but the pod has no ${ANNOTATION_PREFIX}secret-<name> annotation`,
    );
  }
  return files;
}

function checkFileName(name: string, entry: FileDraft, findings: Findings): boolean {
  const keys = Object.keys(entry);
  if (!FILE_NAME.test(name) || name.includes('..')) {
    for (const k of keys) {
      findings.add(
        PROBLEM_CODES.badFileName,
        `${k}-${name}`,
        'the file name must be one path segment of [A-Za-z0-9_.-], not starting with "." and without ".."',
      );
    }
    return false;
  }
  if (entry.secret === undefined) {
    for (const k of keys)
      findings.add(PROBLEM_CODES.orphan, `${k}-${name}`, `has no matching "${ANNOTATION_PREFIX}secret-${name}"`);
    return false;
  }
  return true;
}

function readFile(
  name: string,
  entry: FileDraft,
  findings: Findings,
  limits: AnnotationLimits,
): FileRequest | undefined {
  const parsed = parseReference(entry.secret ?? '');
  if (!parsed.ok) {
    if (parsed.example === undefined)
      findings.add(
        PROBLEM_CODES.badReference,
        `secret-${name}`,
        `${parsed.problem}; the grammar is <provider>:<path>[#<field>][@<version>]`,
      );
    else
      findings.push({
        code: PROBLEM_CODES.badReference,
        annotation: `secret-${name}`,
        message: `${parsed.problem}; the grammar is <provider>:<path>?<parameters>[#<field>]`,
        example: example(`secret-${name}`, parsed.example),
      });
    return undefined;
  }
  const ref = parsed.ref;
  const before = findings.problems.length;
  const format = entry.format === undefined ? undefined : readFormat(name, entry, ref, findings);
  if (entry.template !== undefined) checkTemplate(name, entry.template, ref, findings);
  const refreshMs =
    entry.refresh === undefined ? undefined : readRefresh(entry.refresh, findings, `refresh-${name}`, limits);
  if (findings.problems.length > before) return undefined;
  return {
    name,
    ref,
    ...defined({ format }),
    ...defined({ template: entry.template }),
    ...defined({ refreshMs }),
  };
}

function readFormat(
  name: string,
  entry: FileDraft,
  ref: SecretReference,
  findings: Findings,
): OutputFormat | undefined {
  const key = `format-${name}`;
  const format = OUTPUT_FORMATS.find((f) => f === entry.format);
  if (format === undefined) {
    findings.add(
      PROBLEM_CODES.badFormat,
      key,
      `must be one of ${OUTPUT_FORMATS.join(', ')}, not ${quote(entry.format ?? '')}`,
    );
  } else if (entry.template !== undefined) {
    findings.add(
      PROBLEM_CODES.badFormat,
      key,
      `conflicts with "${ANNOTATION_PREFIX}template-${name}": a template replaces the format; keep one`,
    );
  } else if ((format === 'env' || format === 'properties') && ref.field !== undefined) {
    findings.add(
      PROBLEM_CODES.badFormat,
      key,
      `${format} writes key=value lines of a whole secret; drop "#${ref.field}" from the reference`,
    );
  } else {
    return format;
  }
  return undefined;
}

function checkTemplate(name: string, template: string, ref: SecretReference, findings: Findings): void {
  const key = `template-${name}`;
  if (template.length > 65_536) {
    findings.add(PROBLEM_CODES.badTemplate, key, 'is longer than 64 KiB');
    return;
  }
  const syntax = templateFields(template);
  if (!syntax.ok) {
    findings.add(PROBLEM_CODES.badTemplate, key, templateSyntaxProblem(syntax.offset));
  } else if (ref.field !== undefined && syntax.fields.some((f) => f !== '')) {
    findings.add(
      PROBLEM_CODES.badTemplate,
      key,
      `uses {{ .field }} but the reference selects the single field "#${ref.field}"; drop it from "${ANNOTATION_PREFIX}secret-${name}" or use {{ . }}`,
    );
  }
}
