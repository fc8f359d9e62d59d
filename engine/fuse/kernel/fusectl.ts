import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const CONNECTIONS = '/sys/fs/fuse/connections';

/**
 * Aborts the FUSE connection of the mount whose device is `dev` (`major:minor`, as mountinfo shows
 * it), as `echo 1 > /sys/fs/fuse/connections/N/abort` does: every request waiting on it fails, bind
 * mounts and files still open through it get ENOTCONN, and our reader threads return from read(2)
 * (closing our descriptor does not end the connection while they wait in it). Where fusectl is not
 * mounted on /sys/fs/fuse/connections (most containers), it is mounted for the moment on a private
 * directory. Needs root, as serving /dev/fuse does.
 */
export async function abortConnection(dev: string): Promise<void> {
  const [major, minor] = dev.split(':').map(Number);
  if (!Number.isInteger(major) || !Number.isInteger(minor)) throw new Error(`'${dev}' is not a device number`);
  // The kernel names a connection by its dev_t as it encodes it (major << 20 | minor).
  const name = String(major * 2 ** 20 + minor);
  try {
    await fsp.writeFile(path.join(CONNECTIONS, name, 'abort'), '1');
    return;
  } catch {
    /* fusectl not mounted there: below */
  }
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'dynamicfs-fusectl-'));
  try {
    await exec('mount', ['-t', 'fusectl', 'fusectl', dir]);
    try {
      await fsp.writeFile(path.join(dir, name, 'abort'), '1');
    } finally {
      await exec('umount', [dir]).catch(() => exec('umount', ['-l', dir]).catch(() => undefined));
    }
  } catch (err) {
    throw new Error(
      `could not abort FUSE connection ${name} through fusectl: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`,
    );
  } finally {
    await fsp.rmdir(dir).catch(() => undefined);
  }
}
