// Command-line parsing shared by the subcommands: node:util's parseArgs, with its errors said in the CLI's
// own words (it talks about "positional arguments" and "--" escapes, which answer a different question).
import { parseArgs } from 'node:util';

export type OptionsConfig = NonNullable<Parameters<typeof parseArgs>[0]>['options'];

export type Parsed<T extends OptionsConfig> =
  | {
      readonly ok: true;
      readonly values: ReturnType<typeof parseArgs<{ options: T; allowPositionals: true; strict: true }>>['values'];
      readonly positionals: readonly string[];
    }
  | { readonly ok: false; readonly error: string };

/** The option a parseArgs error is about: its long form when the message names one (`'-o, --output <value>'`). */
function optionIn(message: string): string {
  const quoted = /'([^']+)'/.exec(message)?.[1] ?? '';
  return /--[\w-]+/.exec(quoted)?.[0] ?? /-\w/.exec(quoted)?.[0] ?? quoted;
}

export function parseCommandLine<T extends OptionsConfig>(
  argv: readonly string[],
  options: T,
  allowPositionals: boolean,
): Parsed<T> {
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true });
    if (!allowPositionals && positionals.length > 0)
      return { ok: false, error: `unexpected argument "${positionals[0] ?? ''}"` };
    return { ok: true, values, positionals };
  } catch (err) {
    const { code, message } = err as { code?: string; message: string };
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return { ok: false, error: `unknown option "${optionIn(message)}"` };
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      return {
        ok: false,
        error: message.includes('does not take')
          ? `option "${optionIn(message)}" takes no value`
          : `option "${optionIn(message)}" needs a value`,
      };
    }
    return { ok: false, error: message };
  }
}
