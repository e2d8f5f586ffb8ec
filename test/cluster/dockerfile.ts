// Reading Dockerfiles and .dockerignore files the way BuildKit does, for the checks of test/dockerfiles.test.ts
// and the image assembler (images.ts): stages of instructions with their line numbers, the shell-word rules
// of ENV, LABEL, COPY and friends (quotes, backslashes, $VAR / ${VAR} / ${VAR:-default} / ${VAR:+alt}),
// leading --flags, the JSON (exec) form, and .dockerignore patterns. What is not understood is an error.

export interface Instruction {
  /** Upper-case keyword: COPY, RUN, … */
  readonly keyword: string;
  /** The rest of the logical line, continuation lines joined with a space. */
  readonly args: string;
  /** 1-based line where the instruction starts, for error messages. */
  readonly line: number;
}

export interface Stage {
  /** The image reference as written (variables not expanded). */
  readonly from: string;
  readonly name: string | undefined;
  readonly platform: string | undefined;
  readonly line: number;
  readonly instructions: readonly Instruction[];
}

export interface Dockerfile {
  /** ARG instructions before the first FROM: usable in FROM lines and re-declared in stages. */
  readonly globalArgs: readonly Instruction[];
  readonly stages: readonly Stage[];
}

/** Logical lines: comments dropped (also inside a continuation, as BuildKit does), `\` continuations joined. */
function logicalLines(text: string): { text: string; line: number }[] {
  const out: { text: string; line: number }[] = [];
  let pending: { text: string; line: number } | undefined;
  text.split(/\r?\n/).forEach((raw, index) => {
    const trimmed = raw.trim();
    if (trimmed.startsWith('#') || (trimmed === '' && pending === undefined)) return;
    const continued = trimmed.endsWith('\\');
    const part = continued ? trimmed.slice(0, -1).trim() : trimmed;
    pending =
      pending === undefined
        ? { text: part, line: index + 1 }
        : { text: `${pending.text} ${part}`.trim(), line: pending.line };
    if (!continued) {
      out.push(pending);
      pending = undefined;
    }
  });
  if (pending !== undefined) out.push(pending);
  return out;
}

/** Splits a Dockerfile into global ARGs and stages of instructions; `source` names the file in errors. */
export function parseDockerfile(text: string, source = 'Dockerfile'): Dockerfile {
  const globalArgs: Instruction[] = [];
  const stages: {
    from: string;
    name: string | undefined;
    platform: string | undefined;
    line: number;
    instructions: Instruction[];
  }[] = [];
  for (const { text: lineText, line } of logicalLines(text)) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(lineText) ?? [];
    const instruction: Instruction = { keyword: keyword.toUpperCase(), args, line };
    if (instruction.keyword === 'FROM') {
      const match = /^(?:--platform=(\S+)\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (match === null) throw new Error(`${source}:${line}: cannot read "FROM ${args}"`);
      stages.push({ from: match[2]!, name: match[3], platform: match[1], line, instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (stage !== undefined) stage.instructions.push(instruction);
    else if (instruction.keyword === 'ARG') globalArgs.push(instruction);
    else throw new Error(`${source}:${line}: ${keyword} before the first FROM`);
  }
  return { globalArgs, stages };
}

/** The arguments of every `keyword` instruction of a stage, in order. */
export function argsOf(stage: Stage, keyword: string): readonly string[] {
  return stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);
}

export type Variables = Readonly<Record<string, string>>;

/** One `$NAME`, `${NAME}`, `${NAME:-word}` or `${NAME:+word}` at text[start] (a `$`): its value and length. */
function variableAt(text: string, start: number, vars: Variables): { value: string; length: number } {
  const braced = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-+])([^}]*))?\}/.exec(text.slice(start));
  if (braced !== null) {
    const [all, name = '', modifier, word = ''] = braced;
    const value = vars[name] ?? '';
    if (modifier === ':-') return { value: value === '' ? word : value, length: all.length };
    if (modifier === ':+') return { value: value === '' ? '' : word, length: all.length };
    return { value, length: all.length };
  }
  if (text[start + 1] === '{')
    throw new Error(`unsupported variable expression in "${text}" (only \${NAME}, \${NAME:-word} and \${NAME:+word})`);
  const plain = /^\$([A-Za-z_][A-Za-z0-9_]*)/.exec(text.slice(start));
  if (plain === null) return { value: '$', length: 1 };
  return { value: vars[plain[1]!] ?? '', length: plain[0].length };
}

/**
 * BuildKit's word processing: quotes removed (no expansion inside single quotes), a backslash escapes the next
 * character, variables expanded. With `split`, unquoted whitespace separates words; without it, one word.
 */
function processWords(text: string, vars: Variables, split: boolean): string[] {
  const words: string[] = [];
  let word = '';
  let started = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i]!;
    if (quote === undefined && split && /\s/.test(c)) {
      if (started) words.push(word);
      [word, started] = ['', false];
      continue;
    }
    started = true;
    if (c === quote) quote = undefined;
    else if (quote === undefined && (c === '"' || c === "'")) quote = c;
    else if (
      c === '\\' &&
      i + 1 < text.length &&
      (quote === undefined || (quote === '"' && '"$\\'.includes(text[i + 1]!)))
    )
      word += text[(i += 1)]!;
    else if (c === '$' && quote !== "'") {
      const { value, length } = variableAt(text, i, vars);
      word += value;
      i += length - 1;
    } else word += c;
  }
  if (quote !== undefined) throw new Error(`unterminated ${quote} quote in "${text}"`);
  if (started) words.push(word);
  return words;
}

/** Whitespace-separated words with quotes removed and variables expanded. */
export function shellWords(text: string, vars: Variables): string[] {
  return processWords(text, vars, true);
}

/** One word (FROM, WORKDIR, USER): quotes removed and variables expanded, whitespace kept. */
export function shellWord(text: string, vars: Variables): string {
  return processWords(text, vars, false).join('');
}

/** `KEY=value …` pairs of ENV and LABEL, or the legacy single pair `KEY value`. */
export function keyValuePairs(text: string, vars: Variables): [string, string][] {
  const legacy = /^([^\s=]+)\s+(.*)$/.exec(text);
  if (legacy !== null) return [[legacy[1]!, shellWord(legacy[2]!, vars)]];
  return shellWords(text, vars).map((pair) => {
    const at = pair.indexOf('=');
    if (at <= 0) throw new Error(`"${pair}" is not KEY=value`);
    return [pair.slice(0, at), pair.slice(at + 1)];
  });
}

const FLAG = /^--([a-z-]+)(?:=(\S*))?(?:\s+|$)/;

/** Leading `--name=value` and `--name` flags (COPY --from=…, --chmod=…, --link) and the text after them. */
export function splitFlags(text: string): { flags: Record<string, string>; rest: string } {
  const flags: Record<string, string> = {};
  let rest = text.trim();
  for (let match = FLAG.exec(rest); match !== null; match = FLAG.exec(rest)) {
    flags[match[1]!] = match[2] ?? '';
    rest = rest.slice(match[0].length);
  }
  return { flags, rest };
}

/**
 * The JSON (exec) form `["a", "b"]`, or undefined for the shell form (as BuildKit: text that is not a JSON array of
 * strings).
 */
export function execForm(text: string): string[] | undefined {
  if (!text.trim().startsWith('[')) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) && parsed.every((p) => typeof p === 'string') ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export interface IgnoreRule {
  readonly pattern: string;
  /** A `!pattern`: re-includes what earlier rules excluded. */
  readonly include: boolean;
  readonly regexp: RegExp;
}

/** One path segment of a pattern as a regular expression: `*` and `?` stop at `/`. */
function segmentSource(segment: string): string {
  if (/[[\]]/.test(segment))
    throw new Error(`.dockerignore pattern segment "${segment}": character classes are not supported`);
  return segment
    .replace(/[.+^${}()|\\]/g, '\\$&')
    .replaceAll('*', '[^/]*')
    .replaceAll('?', '[^/]');
}

/**
 * A .dockerignore pattern (cleaned like filepath.Clean, no leading /) as an anchored regular expression; `**` spans
 * directories.
 */
function patternRegExp(pattern: string): RegExp {
  const segments = pattern.split('/').filter((s) => s !== '' && s !== '.');
  let source = '';
  segments.forEach((segment, index) => {
    const last = index === segments.length - 1;
    if (segment === '**') source += last ? '.*' : '(?:.*/)?';
    else source += segmentSource(segment) + (last ? '' : '/');
  });
  return new RegExp(`^${source}$`);
}

export function parseDockerignore(text: string): IgnoreRule[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const include = l.startsWith('!');
      const pattern = (include ? l.slice(1) : l).trim();
      return { pattern, include, regexp: patternRegExp(pattern) };
    });
}

/**
 * Whether a context path (relative, `/`-separated) is left out of the build context: the last rule that matches
 * the path or one of its parent directories decides (moby's patternmatcher, MatchesOrParentMatches).
 */
export function isIgnored(path: string, rules: readonly IgnoreRule[]): boolean {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const rule of rules) {
    if (candidates.some((c) => rule.regexp.test(c))) ignored = !rule.include;
  }
  return ignored;
}
