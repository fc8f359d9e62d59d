/**
 * A FUSE mount whose handlers do nothing but answer: the ceiling of the fuse-native binding with
 * the same mount options DynamicFS uses. Reads return the buffer as it is; writes are discarded.
 *
 * Usage: node dist/bench/null-fuse.js MOUNTPOINT [READ_AHEAD_KB] [full|minimal] (runs until SIGTERM).
 * READ_AHEAD_KB 0 (the default) keeps the kernel's read-ahead, anything else sets it as DynamicFS does.
 * `full` (the default) answers every operation DynamicFS implements; `minimal` only those a dd needs.
 * The difference matters: a filesystem with xattr handlers is asked getxattr("security.capability")
 * before every write(2) (FUSE 2 cannot tell the kernel it handles that itself), while one without
 * answers ENOSYS once and is never asked again.
 */
import { FuseMount } from '../engine/fuse/mount.js';
import { nullOperations } from './null-ops.js';

const mnt = process.argv[2];
const readAheadKb = Number(process.argv[3] ?? 0);
const full = (process.argv[4] ?? 'full') === 'full';

const mount = new FuseMount(mnt, nullOperations(full), { fsname: 'nullfs', readAheadKb });

await mount.mount();
process.stdout.write('ready\n');
const stop = () => void mount.unmount().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
