// The `template-<name>` language: literal text plus `{{ .field }}` (or `{{ . }}` for the whole value). There
// are no expressions, functions, loops or includes, so an app team's template cannot execute anything, and the
// output is bounded. A missing field is an error naming the field, never a value.
import { templateSyntaxProblem, tokenizeTemplate } from '../injector/template-syntax.ts';
import { RenderError } from './render-error.ts';

/** The rendered file may not exceed this (the default tmpfs holds 1 MiB for all files). */
export const MAX_OUTPUT_BYTES = 512 * 1024;

export type Lookup = (field: string) => string | undefined;

function fieldValue(field: string, lookup: Lookup): string {
  const value = lookup(field);
  if (value === undefined)
    throw new RenderError('FIELD_MISSING', `template: field "${field === '' ? '.' : field}" is missing`);
  return value;
}

/**
 * Renders `template`; `lookup('')` is the whole value. Throws RenderError (FIELD_MISSING, TEMPLATE_SYNTAX, TOO_LARGE).
 */
export function renderTemplate(template: string, lookup: Lookup, maxBytes: number = MAX_OUTPUT_BYTES): string {
  const tokens = tokenizeTemplate(template);
  if (!tokens.ok) throw new RenderError('TEMPLATE_SYNTAX', `template: ${templateSyntaxProblem(tokens.offset)}`);
  let out = '';
  let bytes = 0;
  for (const part of tokens.parts) {
    const piece = part.kind === 'text' ? part.text : fieldValue(part.field, lookup);
    bytes += Buffer.byteLength(piece);
    if (bytes > maxBytes) throw new RenderError('TOO_LARGE', `template: output is larger than ${maxBytes} bytes`);
    out += piece;
  }
  return out;
}
