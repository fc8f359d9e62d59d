import { fsError } from '../util/errors.js';
import { nameByteLength, printableName } from '../util/byte-names.js';
import { NAME_MAX } from './modes.js';

/** Splits an absolute mount path into components, rejecting names the filesystem cannot hold. */
export function splitPath(p: string): string[] {
  if (!p.startsWith('/')) throw fsError('EINVAL', `path '${p}' is not absolute`);
  const parts = p.split('/').filter((x) => x.length > 0);
  for (const part of parts) {
    if (part === '.' || part === '..') throw fsError('EINVAL', `path '${p}' is not canonical`);
    checkName(part);
  }
  return parts;
}

/** One name of a directory entry: 1 to NAME_MAX bytes, no '/' or NUL, not '.' or '..'. */
export function checkName(name: string): void {
  if (name.length === 0 || name === '.' || name === '..') throw fsError('EINVAL', `'${name}' cannot name a directory entry`);
  if (name.includes('/') || name.includes('\0')) throw fsError('EINVAL', `a name cannot hold '/' or NUL`);
  if (nameByteLength(name) > NAME_MAX)
    throw fsError('ENAMETOOLONG', `name '${printableName(name.slice(0, 32))}...' is longer than ${NAME_MAX} bytes`);
}

export function parentAndName(p: string): { parentPath: string; name: string } {
  const parts = splitPath(p);
  if (parts.length === 0) throw fsError('EBUSY', 'the root directory has no parent');
  const name = parts[parts.length - 1];
  return { parentPath: '/' + parts.slice(0, -1).join('/'), name };
}
