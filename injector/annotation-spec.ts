// The shape of one row of the annotation table (injector/annotations.ts and each provider's declaration) and
// the helpers its readers share. A leaf module: provider declarations import it without importing the table.
import type { AnnotationRequest } from './annotations.ts';
import { PROBLEM_CODES } from './problems.ts';
import type { Problem } from './problems.ts';

export type Draft = { -readonly [K in keyof AnnotationRequest]: AnnotationRequest[K] };

export interface AnnotationLimits {
  /** sidekey.io/refresh* below this are refused. */
  readonly minRefreshMs: number;
}

/**
 * Problems one refusal lists. Past it the remaining annotations are not checked: a review of 3 MiB can carry
 * some 40,000 annotations, and each unknown key costs an edit distance per known key.
 */
export const MAX_PROBLEMS = 20;

/** Builds a problem about an annotation (key without the prefix), adding a valid example of it. */
export type ProblemMaker = (code: Problem['code'], annotation: string, message: string) => Problem;

export class Findings {
  readonly problems: Problem[] = [];
  readonly warnings: string[] = [];
  /** Some problems (or annotations) were left unchecked. */
  truncated = false;
  private readonly make: ProblemMaker;
  constructor(make: ProblemMaker) {
    this.make = make;
  }
  get full(): boolean {
    return this.problems.length >= MAX_PROBLEMS;
  }
  add(code: Problem['code'], annotation: string, message: string): void {
    this.push(this.make(code, annotation, message));
  }
  push(problem: Problem): void {
    if (this.full) this.truncated = true;
    else this.problems.push(problem);
  }
  /** The closing problem of a truncated list, which says that more may follow. */
  close(): void {
    if (!this.truncated) return;
    this.problems.push({
      code: PROBLEM_CODES.tooMany,
      message: `only the first ${MAX_PROBLEMS} problems are listed and the rest of the annotations were not checked; fix these and submit again`,
    });
  }
}

export interface KeyContext {
  readonly draft: Draft;
  readonly findings: Findings;
  readonly limits: AnnotationLimits;
}

/** Reads the value of one pod annotation into the draft, or adds a problem naming `key`. */
export type KeyReader = (value: string, ctx: KeyContext, key: string) => void;

/** One annotation: its key without the prefix, a valid example value, its README row and how it is read. */
export interface AnnotationSpec {
  readonly key: string;
  readonly example: string;
  /** The README's "meaning" cell. */
  readonly doc: string;
  /** The README's "default" cell. */
  readonly default: string;
  /**
   * How a pod key's value is read. `file`: written `<key>-<name>` and read per file; `gate`: read before the
   * others (inject, status).
   */
  readonly read: KeyReader | 'file' | 'gate';
  /** A pod key that is also written `<key>-<name>` for one file (refresh). */
  readonly perFile?: boolean;
}

/** A reader of a value that must match `pattern` within `max` characters; `store` puts it into the draft. */
export function patternField(
  code: Problem['code'],
  pattern: RegExp,
  what: string,
  max: number,
  store: (draft: Draft, value: string) => void,
): KeyReader {
  return (value, { draft, findings }, key) => {
    if (value.length <= max && pattern.test(value)) store(draft, value);
    else findings.add(code, key, `is not ${what}`);
  };
}

/** Stores one option of a provider's annotations (sidekey.io/aws-region, sidekey.io/vault-role, ...). */
export function setProviderOption(draft: Draft, provider: string, option: string, value: unknown): void {
  draft.providers = { ...draft.providers, [provider]: { ...draft.providers[provider], [option]: value } };
}
