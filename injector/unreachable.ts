// The default branch of an exhaustive switch: the compiler refuses a new kind that some switch does not handle,
// and a value from outside the types (a hand-written configuration) fails loudly instead of acting as another kind.
export function unreachable(value: never, what: string): never {
  throw new Error(`unknown ${what}: ${JSON.stringify(value)}`);
}
