import path from 'node:path';

/** Where things live on disk. One place, so the layout in ARCHITECTURE.md has one source. */
export const POOL_IDENTITY = 'pool.json';
export const POOL_METADATA = 'metadata.db';
export const POOL_LOCK = 'owner.lock';
export const POOL_SOCKET = 'control.sock';
/** Where the daemon prepares bind mounts of volumes before they go onto their targets. */
export const POOL_STAGING = 'publish-staging';
export const DISK_IDENTITY = '.dynamicfs-disk.json';
export const DISK_DATA_DIR = 'dynamicfs';
export const METADATA_MIRROR = 'metadata-mirror.db';
export const DISK_HINTS = 'disk-paths.txt';

export function fragmentDir(diskPath: string, eid: number): string {
  return path.join(diskPath, DISK_DATA_DIR, 'fragments', (eid & 0xff).toString(16).padStart(2, '0'));
}

export function fragmentPath(diskPath: string, eid: number, slot: number): string {
  return path.join(fragmentDir(diskPath, eid), `${eid}.${slot}`);
}

export function mirrorPath(diskPath: string): string {
  return path.join(diskPath, DISK_DATA_DIR, METADATA_MIRROR);
}
