import { createRequire } from 'node:module';
import type * as RS from '@ronomon/reed-solomon';

// The package's entry point is the native binding itself, which only require() can load.
export const ReedSolomon = createRequire(import.meta.url)('@ronomon/reed-solomon') as typeof RS;
export const MAX_K: number = ReedSolomon.MAX_K;
export const MAX_M: number = ReedSolomon.MAX_M;
