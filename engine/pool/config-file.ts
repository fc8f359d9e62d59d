import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { UsageError } from '../util/errors.js';
import { parseSize } from '../util/units.js';

/**
 * Pool creation settings from a YAML file: `storage.extent_size`, `storage.redundancy`,
 * `storage.checksum`, `reliability.auto_rebuild`, `reliability.rebuild_concurrency`, `reliability.rebuild_bandwidth`.
 */
export interface PoolConfigFile {
  extentSize?: number; redundancy?: string; checksum?: string; autoRebuild?: boolean; rebuildConcurrency?: number; rebuildBandwidth?: number;
}

const STORAGE_KEYS = ['extent_size', 'redundancy', 'checksum'];

export function readPoolConfigFile(file: string): PoolConfigFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--config ${file}: cannot read it (${(err as Error).message})`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new UsageError(`--config ${file}: not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`--config ${file}: expected a mapping at the top level`);
  const out: PoolConfigFile = {};
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    if (k === 'reliability') {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new UsageError(`--config ${file}: 'reliability' must be a mapping`);
      for (const [rk, rv] of Object.entries(v as Record<string, unknown>)) {
        if (rk === 'auto_rebuild') {
          if (typeof rv !== 'boolean') throw new UsageError(`--config ${file}: 'reliability.auto_rebuild' must be true or false, got ${JSON.stringify(rv)}`);
          out.autoRebuild = rv;
        } else if (rk === 'rebuild_concurrency') {
          if (typeof rv !== 'number' || !Number.isInteger(rv) || rv < 1 || rv > 64) {
            throw new UsageError(`--config ${file}: 'reliability.rebuild_concurrency' must be a whole number from 1 to 64, got ${JSON.stringify(rv)}`);
          }
          out.rebuildConcurrency = rv;
        } else if (rk === 'rebuild_bandwidth') {
          out.rebuildBandwidth = parseSize(String(rv), `reliability.rebuild_bandwidth in ${file}`);
        } else {
          throw new UsageError(`--config ${file}: unknown field 'reliability.${rk}' (known: auto_rebuild, rebuild_concurrency, rebuild_bandwidth)`);
        }
      }
      continue;
    }
    if (k !== 'storage') throw new UsageError(`--config ${file}: unknown field '${k}' (known: storage, reliability)`);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new UsageError(`--config ${file}: 'storage' must be a mapping`);
    for (const [sk, sv] of Object.entries(v as Record<string, unknown>)) {
      if (!STORAGE_KEYS.includes(sk)) throw new UsageError(`--config ${file}: unknown field 'storage.${sk}' (known: ${STORAGE_KEYS.join(', ')})`);
      if (typeof sv !== 'string' && typeof sv !== 'number') throw new UsageError(`--config ${file}: 'storage.${sk}' must be a string or number, got ${JSON.stringify(sv)}`);
      if (sk === 'extent_size') out.extentSize = parseSize(String(sv), `storage.extent_size in ${file}`);
      if (sk === 'redundancy') out.redundancy = String(sv);
      if (sk === 'checksum') out.checksum = String(sv);
    }
  }
  return out;
}
