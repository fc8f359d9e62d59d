import { UsageError } from '../util/errors.js';

/** What a command may receive: plain JSON, so the same call works locally and over the control socket. */
export type CommandArgs = Record<string, string | number | boolean | null | undefined>;

/** A list of strings sent as JSON text in argument `key`, or undefined when absent; refused (naming `key`) when malformed. */
export function jsonStrings(
  args: CommandArgs,
  key: string,
  each: (s: string) => boolean = () => true,
  expected = 'strings',
): string[] | undefined {
  const raw = args[key];
  if (raw === undefined || raw === null) return undefined;
  let v: unknown;
  try {
    v = typeof raw === 'string' ? JSON.parse(raw) : raw;
  } catch {
    throw new UsageError(`${key} must be a JSON list of ${expected}`);
  }
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && each(x)))
    throw new UsageError(`${key} must be a JSON list of ${expected}`);
  return v as string[];
}
