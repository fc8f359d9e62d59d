import { fsError } from '../util/errors.js';
import { NAME_MAX } from './modes.js';

/** Splits an absolute mount path into components, rejecting names the filesystem cannot hold. */
export function splitPath(p: string): string[] {
  if (!p.startsWith('/')) throw fsError('EINVAL', `path '${p}' is not absolute`);
  const parts = p.split('/').filter((x) => x.length > 0);
  for (const part of parts) {
    if (Buffer.byteLength(part) > NAME_MAX)
      throw fsError('ENAMETOOLONG', `name '${part.slice(0, 32)}...' is longer than ${NAME_MAX} bytes`);
    if (part === '.' || part === '..') throw fsError('EINVAL', `path '${p}' is not canonical`);
  }
  return parts;
}

export function parentAndName(p: string): { parentPath: string; name: string } {
  const parts = splitPath(p);
  if (parts.length === 0) throw fsError('EBUSY', 'the root directory has no parent');
  const name = parts[parts.length - 1];
  return { parentPath: '/' + parts.slice(0, -1).join('/'), name };
}
