// The syntax of `template-<name>`: literal text plus `{{ .field }}` or `{{ . }}` (the whole value). Admission
// checks it so a broken template is refused before a pod exists; the agent renders with the same grammar.

const ACTION = /\{\{\s*\.([A-Za-z0-9_.-]*)\s*\}\}/y;

export type TemplateSyntax =
  | { readonly ok: true; readonly fields: readonly string[] }
  | { readonly ok: false; readonly offset: number };

/** The fields a template uses ('' for `{{ . }}`), or the offset of the first unsupported `{{`. */
export function templateFields(template: string): TemplateSyntax {
  const fields: string[] = [];
  let open = template.indexOf('{{');
  while (open >= 0) {
    ACTION.lastIndex = open;
    const match = ACTION.exec(template);
    if (match === null) return { ok: false, offset: open };
    fields.push(match[1] ?? '');
    open = template.indexOf('{{', ACTION.lastIndex);
  }
  return { ok: true, fields };
}
