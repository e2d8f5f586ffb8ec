// Errors of rendering a secret into a file. Messages name the file, the field or the format, never a value.

import { CodedError } from './coded-error.ts';
export type RenderErrorCode =
  'FIELD_MISSING' | 'NOT_AN_OBJECT' | 'BAD_KEY' | 'BAD_VALUE' | 'TEMPLATE_SYNTAX' | 'TOO_LARGE';

export class RenderError extends CodedError<RenderErrorCode> {
  override readonly name = 'RenderError';
}
