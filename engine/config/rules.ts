/**
 * Value rules that more than one surface states (the config schema, the CLI, the pool, the CRDs, the
 * CSI parameters): each is said here once and imported where it is checked.
 */

/** Storage tiers a disk or a volume may name. */
export const TIERS = ['hot', 'warm', 'cold'] as const;
export type Tier = (typeof TIERS)[number];
/** The tier of a disk added without one. */
export const DEFAULT_TIER: Tier = 'warm';

export function isTier(s: string): s is Tier {
  return (TIERS as readonly string[]).includes(s);
}

/** Extent sizes: a multiple of the page size, from one page to 64 MiB. */
export const EXTENT_SIZE_ALIGN = 4096;
export const MIN_EXTENT_SIZE = 4096;
export const MAX_EXTENT_SIZE = 64 * 2 ** 20;
export const EXTENT_SIZE_RULE = 'a multiple of 4 KiB from 4 KiB to 64 MiB';

export function isExtentSize(n: number): boolean {
  return Number.isSafeInteger(n) && n % EXTENT_SIZE_ALIGN === 0 && n >= MIN_EXTENT_SIZE && n <= MAX_EXTENT_SIZE;
}
