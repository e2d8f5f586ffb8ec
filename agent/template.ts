// The `template-<name>` language: literal text plus `{{ .field }}` (or `{{ . }}` for the whole value). There
// are no expressions, functions, loops or includes, so an app team's template cannot execute anything, and the
// output is bounded. A missing field is an error naming the field, never a value.
import { RenderError } from './render-error.ts';

/** The rendered file may not exceed this (the default tmpfs holds 1 MiB for all files). */
export const MAX_OUTPUT_BYTES = 512 * 1024;

const ACTION = /\{\{\s*(\.[A-Za-z0-9_.-]*)\s*\}\}/y;

export type Lookup = (field: string) => string | undefined;

interface Part {
  readonly text?: string;
  readonly field?: string;
}

function parse(template: string): readonly Part[] {
  const parts: Part[] = [];
  let pos = 0;
  while (pos < template.length) {
    const open = template.indexOf('{{', pos);
    if (open < 0) {
      parts.push({ text: template.slice(pos) });
      break;
    }
    if (open > pos) parts.push({ text: template.slice(pos, open) });
    ACTION.lastIndex = open;
    const match = ACTION.exec(template);
    if (match === null) {
      throw new RenderError(
        'TEMPLATE_SYNTAX',
        `template: unsupported action at offset ${open}; only {{ .field }} and {{ . }} are allowed`,
      );
    }
    parts.push({ field: (match[1] ?? '.').slice(1) });
    pos = ACTION.lastIndex;
  }
  return parts;
}

/** Renders `template`; `lookup('')` is the whole value. Throws RenderError (FIELD_MISSING, TEMPLATE_SYNTAX, TOO_LARGE). */
export function renderTemplate(template: string, lookup: Lookup, maxBytes: number = MAX_OUTPUT_BYTES): string {
  let out = '';
  let bytes = 0;
  for (const part of parse(template)) {
    let piece = part.text ?? '';
    if (part.field !== undefined) {
      const value = lookup(part.field);
      if (value === undefined) {
        throw new RenderError('FIELD_MISSING', `template: field "${part.field === '' ? '.' : part.field}" is missing`);
      }
      piece = value;
    }
    bytes += Buffer.byteLength(piece);
    if (bytes > maxBytes) throw new RenderError('TOO_LARGE', `template: output is larger than ${maxBytes} bytes`);
    out += piece;
  }
  return out;
}
