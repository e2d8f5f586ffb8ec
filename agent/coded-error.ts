// The agent's errors carry a stable code, which logs, metrics and the init termination message report; their
// messages name what failed (a file, a path, a status), never a secret value.

export class CodedError<C extends string> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
