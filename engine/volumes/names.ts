/** Longest volume name we accept (a directory name, well under NAME_MAX). */
export const MAX_VOLUME_NAME = 128;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Why `name` cannot be a volume name (it becomes a top-level directory of the pool), or null. Refuses
 * anything that could escape or surprise: separators, `.`/`..`, NUL, control characters, overlong names.
 */
export function volumeNameProblem(name: string): string | null {
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_VOLUME_NAME) return `is ${name.length} characters long (at most ${MAX_VOLUME_NAME})`;
  if (name.includes('\0')) return 'contains a NUL byte';
  if (name.includes('/') || name.includes('\\')) return 'contains a path separator';
  if (name === '.' || name === '..') return `is '${name}'`;
  if (!NAME.test(name)) return 'may hold only letters, digits, dot, underscore and dash, starting with a letter or digit';
  return null;
}
