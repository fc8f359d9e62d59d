/**
 * Every checksum algorithm a pool may record, newest default first. Extents keep the one they were
 * written with. Kept apart from checksum.ts so the config schema can name them without loading the
 * native hashers.
 */
export const CHECKSUM_ALGORITHMS = ['xxh3', 'xxh64', 'crc32c'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];
export const DEFAULT_CHECKSUM: ChecksumAlgorithm = 'xxh3';

export function isChecksumAlgorithm(name: string): name is ChecksumAlgorithm {
  return (CHECKSUM_ALGORITHMS as readonly string[]).includes(name);
}
