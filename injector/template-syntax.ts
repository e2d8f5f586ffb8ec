// The grammar of `template-<name>`, defined once: literal text plus `{{ .field }}` or `{{ . }}` (the whole
// value). Admission checks templates with it (injector/annotations.ts), so a broken one is refused before a pod
// exists, and the agent renders with the same tokens (agent/template.ts). No imports: both bundles carry it.

const ACTION = /\{\{\s*\.([A-Za-z0-9_.-]*)\s*\}\}/y;

/** Literal text, or the field an action reads ('' for `{{ . }}`). */
export type TemplatePart =
  { readonly kind: 'text'; readonly text: string } | { readonly kind: 'field'; readonly field: string };

export type TemplateTokens =
  { readonly ok: true; readonly parts: readonly TemplatePart[] } | { readonly ok: false; readonly offset: number };

export type TemplateSyntax =
  { readonly ok: true; readonly fields: readonly string[] } | { readonly ok: false; readonly offset: number };

/** The template's parts in order, or the offset of the first `{{` that is not a supported action. */
export function tokenizeTemplate(template: string): TemplateTokens {
  const parts: TemplatePart[] = [];
  let pos = 0;
  for (let open = template.indexOf('{{'); open >= 0; open = template.indexOf('{{', pos)) {
    if (open > pos) parts.push({ kind: 'text', text: template.slice(pos, open) });
    ACTION.lastIndex = open;
    const match = ACTION.exec(template);
    if (match === null) return { ok: false, offset: open };
    parts.push({ kind: 'field', field: match[1] ?? '' });
    pos = ACTION.lastIndex;
  }
  if (pos < template.length) parts.push({ kind: 'text', text: template.slice(pos) });
  return { ok: true, parts };
}

/** The fields a template uses ('' for `{{ . }}`), or the offset of the first unsupported `{{`. */
export function templateFields(template: string): TemplateSyntax {
  const tokens = tokenizeTemplate(template);
  if (!tokens.ok) return tokens;
  return { ok: true, fields: tokens.parts.flatMap((p) => (p.kind === 'field' ? [p.field] : [])) };
}

/** What is wrong with a template whose tokenising stopped at `offset`, and what is allowed instead. */
export function templateSyntaxProblem(offset: number): string {
  return `unsupported action at offset ${offset}; only {{ .field }} and {{ . }} are allowed`;
}
