import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { MAX_VOLUME_NAME, volumeNameProblem } from '../../engine/volumes/names.js';
import { invalid, notFound } from './errors.js';
import type { VolumeCapability } from './proto.js';

/** Longest path we accept (PATH_MAX). */
const MAX_PATH = 4096;

export interface VolumeRef {
  pool: string;
  name: string;
}

export function volumeId(ref: VolumeRef): string {
  return `${ref.pool}:${ref.name}`;
}

/**
 * Parses `POOL:NAME`. Hostile ids (separators, `..`, NUL, overlong) are INVALID_ARGUMENT; ids of
 * another shape, or of a pool this node does not serve, name no volume here: NOT_FOUND.
 */
export function parseVolumeId(id: string, pools: Set<string>): VolumeRef {
  if (!id) throw invalid('volume_id is required');
  if (id.length > MAX_VOLUME_NAME * 2 + 1) throw invalid(`volume_id is ${id.length} characters long (at most ${MAX_VOLUME_NAME * 2 + 1})`);
  if (id.includes('\0') || id.includes('/') || id.includes('\\') || id.split(':').some((p) => p === '..' || p === '.')) {
    throw invalid(`volume_id '${id.replace(/\0/g, '\\0').slice(0, 80)}' contains a path separator, NUL or a dot component`);
  }
  const i = id.indexOf(':');
  if (i <= 0) throw notFound(`no volume '${id}' on this node (ids look like POOL:NAME)`);
  const ref = { pool: id.slice(0, i), name: id.slice(i + 1) };
  const problem = volumeNameProblem(ref.name);
  if (problem) throw invalid(`volume_id '${id.slice(0, 80)}': the volume name ${problem}`);
  if (!pools.has(ref.pool)) throw notFound(`volume ${id}: pool '${ref.pool}' is not served on this node`);
  return ref;
}

/**
 * A target or volume path: absolute, no NUL, not overlong, and strictly inside one of the allowed
 * roots (a volume bound over the root itself would hide every pod's files). Returns the path and
 * the root it lies in.
 */
export function checkPath(p: string, field: string, roots: string[]): { path: string; root: string } {
  if (!p) throw invalid(`${field} is required`);
  if (p.includes('\0')) throw invalid(`${field} contains a NUL byte`);
  if (p.length > MAX_PATH) throw invalid(`${field} is ${p.length} characters long (at most ${MAX_PATH})`);
  if (!path.isAbsolute(p)) throw invalid(`${field} '${p}' is not an absolute path`);
  const abs = path.resolve(p);
  const root = roots.find((r) => abs !== r && abs.startsWith(r.endsWith('/') ? r : `${r}/`));
  if (!root) {
    const at = roots.includes(abs) ? ' (it is the root itself; a target must lie strictly inside)' : '';
    throw invalid(`${field} '${abs}' is outside the directories this plugin serves (${roots.join(', ')})${at}`);
  }
  return { path: abs, root };
}

/**
 * The first symbolic link on the way from `root` to `target` (resolved without following links), or
 * null. The engine checks again as it mounts; this gives the caller a clear answer up front.
 */
export async function symlinkOnTheWay(target: string, root: string): Promise<string | null> {
  let p = root;
  for (const part of path.relative(root, target).split('/')) {
    p = path.join(p, part);
    try {
      if ((await lstat(p)).isSymbolicLink()) return p;
    } catch {
      return null; // missing from here on: the engine makes the rest
    }
  }
  return null;
}

const SUPPORTED_MODES = new Set(['SINGLE_NODE_WRITER', 'SINGLE_NODE_READER_ONLY', 'SINGLE_NODE_SINGLE_WRITER', 'SINGLE_NODE_MULTI_WRITER']);

/** Why a capability cannot be served (block access, multi-node modes, a foreign fs type), or null. */
export function capabilityProblem(c: VolumeCapability): string | null {
  if (c.block) return 'block volumes are not supported (DynamicFS volumes are directory trees)';
  if (!c.mount) return 'volume_capability needs an access type (mount)';
  const mode = c.access_mode?.mode ?? 'UNKNOWN';
  if (!SUPPORTED_MODES.has(mode)) return `access mode ${mode} is not supported (pools are node-local: single-node modes only)`;
  if (c.mount.fs_type && c.mount.fs_type !== 'dynamicfs' && c.mount.fs_type !== 'fuse.dynamicfs')
    return `fs_type '${c.mount.fs_type}' is not supported (volumes are DynamicFS)`;
  return null;
}

export function requireCapabilities(caps: VolumeCapability[] | undefined, field = 'volume_capabilities'): VolumeCapability[] {
  if (!caps || caps.length === 0) throw invalid(`${field} is required`);
  for (const c of caps) {
    if (!c.block && !c.mount) throw invalid(`${field}: each capability needs an access type (mount or block)`);
    if (!c.access_mode) throw invalid(`${field}: each capability needs an access_mode`);
  }
  return caps;
}
