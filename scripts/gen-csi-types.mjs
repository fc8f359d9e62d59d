#!/usr/bin/env node
// Generates the TypeScript types of the CSI messages and services (csi-driver/src/generated) from
// csi-driver/proto/csi.proto with @grpc/proto-loader's proto-loader-gen-types. `npm run gen:csi`
// runs it; test/unit/csi-generated.test.ts fails when the committed output differs from a fresh one.
//   node scripts/gen-csi-types.mjs [OUT_DIR]   (default csi-driver/src/generated, replaced whole;
//                                              another directory must be empty or missing)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const PROTO = 'csi-driver/proto/csi.proto';
export const DEFAULT_OUT = 'csi-driver/src/generated';

/**
 * The loader options the types describe. csi-driver/src/proto.ts loads the proto with the same ones
 * (CSI_LOADER_OPTIONS; the unit test compares them): keepCase gives snake_case fields, int64 arrive
 * as numbers, enums as their names, absent fields as their defaults, oneofs with a virtual field.
 */
export const LOADER_OPTIONS = { keepCase: true, longs: 'Number', enums: 'String', defaults: true, oneofs: true };

function flags() {
  return Object.entries(LOADER_OPTIONS).map(([k, v]) => (v === true ? `--${k}` : `--${k}=${v}`));
}

/** Writes the types into `outDir` (relative to the repository or absolute). */
export function generate(outDir = DEFAULT_OUT) {
  const out = path.resolve(ROOT, outDir);
  if (out === path.resolve(ROOT, DEFAULT_OUT)) rmSync(out, { recursive: true, force: true });
  else if (existsSync(out) && readdirSync(out).length > 0) throw new Error(`${out} is not empty`);
  mkdirSync(out, { recursive: true });
  const bin = createRequire(import.meta.url).resolve('@grpc/proto-loader/build/bin/proto-loader-gen-types.js');
  // Run from the repository, so the files name the proto by its path in it.
  const args = [bin, ...flags(), '--grpcLib=@grpc/grpc-js', '--importFileExtension=.js', '-O', out, PROTO];
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`proto-loader-gen-types failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}`);
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.stdout.write(`generated ${path.relative(ROOT, generate(process.argv[2])) || '.'}\n`);
  } catch (err) {
    process.stderr.write(`gen-csi-types: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
