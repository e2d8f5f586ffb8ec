// The errno-style code of a failed system call (ENOENT, ENOSPC, EACCES, …): what logs and messages name, never
// the error object itself.

export function errnoOf(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}
