import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** A small real filesystem on a loop device, mounted under `root`; `release()` always undoes it. */
export interface LoopDisk {
  path: string;
  device: string;
  release(): void;
}

/** Why loop disks cannot be made here, or null when they can. */
export function loopDisksUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root to attach loop devices';
  if (spawnSync('losetup', ['--version']).status !== 0) return 'needs losetup (util-linux)';
  return null;
}

/** `mkfsArgs` go to mkfs.ext4 before the device (e.g. `-b 4096`: below 512 MiB it picks 1 KiB blocks). */
export function makeLoopDisk(root: string, name: string, sizeMiB: number, mkfsArgs: string[] = []): LoopDisk {
  const img = path.join(root, `${name}.img`);
  const mnt = path.join(root, name);
  execFileSync('truncate', ['-s', `${sizeMiB}M`, img]);
  const device = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim();
  const release = () => {
    spawnSync('umount', ['-l', mnt]);
    spawnSync('losetup', ['-d', device]);
  };
  try {
    execFileSync('mkfs.ext4', ['-q', '-m', '0', ...mkfsArgs, device]);
    fs.mkdirSync(mnt);
    execFileSync('mount', [device, mnt]);
  } catch (err) {
    release();
    throw err;
  }
  return { path: mnt, device, release };
}
