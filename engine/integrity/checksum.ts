import { createRequire } from 'node:module';
import type { ChecksumAlgorithm } from './algorithms.js';

const require = createRequire(import.meta.url);
// Native hashers, measured here on 1 MiB buffers (shared memory, as the fragment threads see it):
// XXH3-64 from xxhash-addon 15-19 GiB/s (its prebuilt binary picks AVX2/AVX-512 at run time),
// xxh64 from @node-rs/xxhash 5.8-6.1, crc32c from @node-rs/crc32 5.1, and @node-rs/xxhash's own
// xxh3 only 1.6 (a scalar build), hence two xxhash packages.
const { XXHash3 } = require('xxhash-addon') as { XXHash3: { hash(data: Buffer): Buffer } };
const { xxh64 } = require('@node-rs/xxhash') as { xxh64(input: Buffer, seed?: bigint): bigint };
const { crc32c } = require('@node-rs/crc32') as { crc32c(input: Buffer, initial?: number): number };

export { CHECKSUM_ALGORITHMS, DEFAULT_CHECKSUM, isChecksumAlgorithm, type ChecksumAlgorithm } from './algorithms.js';

/** Checksums are stored as lower-case hex so the algorithm can change without a schema change. */
export function checksum(algorithm: ChecksumAlgorithm, data: Buffer): string {
  switch (algorithm) {
    case 'xxh3':
      return XXHash3.hash(data).toString('hex');
    case 'xxh64':
      return xxh64(data).toString(16).padStart(16, '0');
    case 'crc32c':
      return crc32c(data).toString(16).padStart(8, '0');
  }
}
