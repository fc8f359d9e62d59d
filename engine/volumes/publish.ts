import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promises as fsp, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { isMounted, lazyUnmount } from '../fuse/mount.js';
import { isNodeError } from '../util/errors.js';
import { isAtOrUnder, readMounts, topMountAt, type MountEntry } from '../util/mountinfo.js';
import { mkdirPrivate } from '../util/private-files.js';
import { VolumeError } from './volumes.js';

const exec = promisify(execFile);

/** Mount flags any publication may carry. */
export const ALLOWED_MOUNT_FLAGS = new Set([
  'ro',
  'rw',
  'nosuid',
  'nodev',
  'noexec',
  'exec',
  'noatime',
  'nodiratime',
  'relatime',
  'strictatime',
]);
/**
 * Flags that undo the default nosuid,nodev: a set-user-ID file or a device node in a volume would be
 * honoured by the kernel. Only whoever runs the CSI plugin may allow them (its --allow-mount-option);
 * the engine takes them from the plugin.
 */
export const PRIVILEGED_MOUNT_FLAGS = new Set(['suid', 'dev']);

/** Why a publication cannot carry `flags` (`privileged`: the ones allowed), or null. */
export function mountFlagProblem(flags: string[], privileged: ReadonlySet<string> = new Set()): string | null {
  const all = flags.flatMap((f) => f.split(',')).filter((f) => f !== '');
  const denied = all.filter((f) => PRIVILEGED_MOUNT_FLAGS.has(f) && !privileged.has(f));
  if (denied.length) return `mount flags ${denied.join(', ')} are refused: volumes are mounted nosuid,nodev unless allowed`;
  const bad = all.filter((f) => !ALLOWED_MOUNT_FLAGS.has(f) && !PRIVILEGED_MOUNT_FLAGS.has(f));
  return bad.length ? `mount flags ${bad.join(', ')} are not supported (allowed: ${[...ALLOWED_MOUNT_FLAGS].join(', ')})` : null;
}

/** What a bind mount of one of our volumes looks like in mountinfo. */
export interface VolumeMountIdentity {
  /** The pool mount's source, `dynamicfs:<pool>`. */
  fsname: string;
  /** The volume's name; undefined accepts any volume of the pool. */
  volume?: string;
}

/** Whether a mount is a bind mount of a volume of our pool (never someone else's tmpfs or volume). */
export function isOurMount(m: MountEntry, id: VolumeMountIdentity): boolean {
  return m.fstype === 'fuse.dynamicfs' && m.source === id.fsname && (id.volume === undefined ? m.root !== '/' : m.root === `/${id.volume}`);
}

/** What is at `target`: nothing mounted, a live mount, or a mount whose FUSE server is gone. */
export async function mountState(target: string): Promise<'none' | 'live' | 'dead'> {
  if (!(await isMounted(target))) {
    try {
      await fsp.stat(target);
    } catch (err) {
      if (isNodeError(err, 'ENOTCONN')) return 'dead';
    }
    return 'none';
  }
  try {
    await fsp.stat(target);
    return 'live';
  } catch (err) {
    return isNodeError(err, 'ENOTCONN') || isNodeError(err, 'EIO') ? 'dead' : 'live';
  }
}

/**
 * Why `target` cannot be published under `root`, judged on the path alone (before anything is looked
 * up): it must be a normalised absolute path strictly inside the root (never the root itself: a
 * volume bound over the whole kubelet directory hides every pod's files), and not inside any
 * DynamicFS mount (another tenant's volume, or the pool's own mount, which its daemon must never
 * look up itself).
 */
export function targetProblem(target: string, root: string, mounts: MountEntry[]): string | null {
  if (!path.isAbsolute(target) || path.resolve(target) !== target) return `target '${target}' is not a normalised absolute path`;
  if (!path.isAbsolute(root) || path.resolve(root) !== root || root === '/')
    return `target root '${root}' is not a normalised absolute path other than /`;
  if (target === root || !isAtOrUnder(target, root)) return `target '${target}' is not strictly inside ${root}`;
  const inside = mounts.find((m) => m.fstype.startsWith('fuse.dynamicfs') && m.mountPoint !== target && isAtOrUnder(target, m.mountPoint));
  if (inside) return `target '${target}' lies inside the DynamicFS mount at ${inside.mountPoint}`;
  return null;
}

// Linux open(2) flags Node does not name (the same on x86-64 and arm64).
const O_PATH = 0o10000000;
const O_NOFOLLOW = 0o400000;
const O_DIRECTORY = 0o200000;

async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await fsp.lstat(p);
  } catch (err) {
    if (isNodeError(err, 'ENOENT')) return null;
    throw new VolumeError('INVALID', `cannot look up ${p}: ${(err as Error).message}`);
  }
}

/** A directory made by a publish: removed again (by its parent's handle) if the publish fails. */
interface Made {
  parent: FileHandle;
  name: string;
}

/**
 * Walks from `root` to `target` without following links, making the directories that are missing,
 * and opens the target as an O_PATH handle. Every step is taken from the handle of the directory
 * before it (`/proc/self/fd/N/name`, as openat and mkdirat would), so a name on the way swapped for a
 * link meanwhile cannot send a step, or a directory made here, anywhere else. The mount then goes
 * onto the target's handle; the kernel's name for it must be the expected one. The handles on the way
 * stay open (`chain`) until the caller is done, to remove what was made (`made`) if it fails.
 */
async function openTarget(target: string, root: string): Promise<{ fh: FileHandle; chain: FileHandle[]; made: Made[] }> {
  const realRoot = await fsp.realpath(root).catch((err: Error) => {
    throw new VolumeError('INVALID', `target root ${root} cannot be resolved: ${err.message}`);
  });
  const parts = path.relative(root, target).split('/');
  const chain: FileHandle[] = [];
  const made: Made[] = [];
  try {
    chain.push(await fsp.open(realRoot, O_PATH | O_DIRECTORY));
    let shown = root;
    for (const part of parts) {
      shown = path.join(shown, part);
      const parent = chain[chain.length - 1];
      const at = `/proc/self/fd/${parent.fd}/${part}`;
      let st = await lstatOrNull(at);
      if (!st) {
        await fsp.mkdir(at, 0o750).catch((err: unknown) => {
          if (!isNodeError(err, 'EEXIST')) throw err;
        });
        made.push({ parent, name: part });
        st = await lstatOrNull(at);
      }
      if (st?.isSymbolicLink())
        throw new VolumeError(
          'INVALID',
          `target '${target}' passes through the symbolic link ${shown}; targets are resolved without following links`,
        );
      if (!st?.isDirectory()) throw new VolumeError('INVALID', `target '${target}': ${shown} is not a directory`);
      chain.push(await fsp.open(at, O_PATH | O_NOFOLLOW | O_DIRECTORY));
    }
    const fh = chain[chain.length - 1];
    const real = await fsp.readlink(`/proc/self/fd/${fh.fd}`).catch(() => '');
    const want = path.join(realRoot, ...parts);
    if (real !== want)
      throw new VolumeError(
        'INVALID',
        `target '${target}' resolves to '${real}', not ${want}: a name on the way changed while it was checked`,
      );
    return { fh, chain, made };
  } catch (err) {
    await removeMade(made);
    await closeAll(chain);
    throw err instanceof VolumeError ? err : new VolumeError('INVALID', `target '${target}': ${(err as Error).message}`);
  }
}

/** Removes directories a publish made, deepest first, through their parents' handles, where still empty. */
async function removeMade(made: Made[]): Promise<void> {
  for (const m of [...made].reverse()) await fsp.rmdir(`/proc/self/fd/${m.parent.fd}/${m.name}`).catch(() => undefined);
}

async function closeAll(handles: FileHandle[]): Promise<void> {
  for (const h of handles) await h.close().catch(() => undefined);
}

/** Runs mount(8) with `fd` as its fd 3 (so `/proc/self/fd/3` names the checked directory). */
function mountWithFd(args: string[], fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('mount', args, { stdio: ['ignore', 'ignore', 'pipe', fd] });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(err.trim() || `mount exited with ${code}`))));
  });
}

/** The per-mount flags a publication ends up with: nosuid and nodev unless allowed flags undo them. */
export function publicationFlags(readonly: boolean, flags: string[]): string[] {
  const given = flags.flatMap((f) => f.split(',')).filter((f) => f && f !== 'ro' && f !== 'rw');
  const out = [readonly ? 'ro' : 'rw', given.includes('suid') ? 'suid' : 'nosuid', given.includes('dev') ? 'dev' : 'nodev'];
  for (const f of given) if (!['suid', 'nosuid', 'dev', 'nodev', 'exec'].includes(f) && !out.includes(f)) out.push(f);
  return out;
}

/** Whether a mount's per-mount options hold what a publication asked for. */
function flagsHold(m: MountEntry, want: string[]): boolean {
  const has = (f: string) => m.options.includes(f);
  return want.every((f) =>
    f === 'suid' ? !has('nosuid') : f === 'dev' ? !has('nodev') : f === 'strictatime' ? !has('relatime') && !has('noatime') : has(f),
  );
}

export interface BindSpec {
  /** `<pool mount>/<volume>`. */
  source: string;
  target: string;
  /** The directory the target must lie strictly inside (the kubelet's). */
  root: string;
  readonly: boolean;
  flags: string[];
  identity: Required<VolumeMountIdentity>;
  /** A directory only the engine may enter (in the pool directory), where the publication is prepared. */
  staging: string;
}

/**
 * Bind-mounts a volume onto `target` with the publication's flags, and confirms the result in
 * mountinfo. The bind with its flags is prepared in the engine's private staging directory (a bind
 * mount copies the pool mount's nosuid,nodev; read-only and other flags take a remount, done there by
 * name where nobody else can rename anything), then bound in one step onto the O_PATH handle of the
 * checked target: nothing is mounted or remounted by the target's name. On any failure nothing is left
 * mounted and the directories it made are removed (never one that was there before).
 */
export async function bindVolume(spec: BindSpec): Promise<void> {
  const mounts = await readMounts();
  const problem = targetProblem(spec.target, spec.root, mounts);
  if (problem) throw new VolumeError('INVALID', problem);
  // Another filesystem mounted at the target (a pod's tmpfs, another driver's volume): never stacked on.
  const there = topMountAt(mounts, spec.target);
  if (there && !isOurMount(there, spec.identity))
    throw new VolumeError(
      'INVALID',
      `target '${spec.target}' is the mount point of ${there.fstype} ${there.source}; refusing to publish over it`,
    );
  const { fh, chain, made } = await openTarget(spec.target, spec.root);
  const want = publicationFlags(spec.readonly, spec.flags);
  await mkdirPrivate(spec.staging);
  const stage = path.join(spec.staging, randomUUID());
  await fsp.mkdir(stage, 0o700);
  let staged = false;
  let before: Set<number> | null = null;
  try {
    staged = true;
    await exec('mount', ['--bind', '-c', spec.source, stage]);
    const prepared = topMountAt(await readMounts(), stage);
    if (prepared && !flagsHold(prepared, want)) await exec('mount', ['-c', '-o', `remount,bind,${want.join(',')}`, stage]);
    before = new Set((await readMounts()).map((m) => m.id));
    // -c: no canonicalisation; the kernel follows /proc/self/fd/3 to the very directory checked above.
    await mountWithFd(['--bind', '-c', stage, '/proc/self/fd/3'], fh.fd);
    // The mount made here, known by its id (its path can change under a rename), must be ours, at the target, with the flags.
    const mine = (await readMounts()).filter(
      (m) => !before?.has(m.id) && isOurMount(m, spec.identity) && !m.mountPoint.startsWith(`${spec.staging}/`),
    );
    const final = mine.find((m) => m.mountPoint === spec.target);
    if (!final || !flagsHold(final, want)) {
      throw new Error(
        `${spec.target} does not show a bind of volume ${spec.identity.volume} with ${want.join(',')} in /proc/self/mountinfo (${final ? final.options.join(',') : `found at ${mine.map((m) => m.mountPoint).join(', ') || 'nowhere'}`})`,
      );
    }
  } catch (err) {
    if (before) await undoBind(before, spec);
    await removeMade(made);
    await closeAll(chain);
    throw err instanceof VolumeError
      ? err
      : new VolumeError(
          'BUSY',
          `bind mount of ${spec.source} on ${spec.target} failed: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`,
        );
  } finally {
    if (staged) await exec('umount', ['-l', '-c', stage]).catch(() => undefined);
    await fsp.rmdir(stage).catch(() => undefined);
  }
  await closeAll(chain);
}

/**
 * Takes back the bind mounts of this volume that appeared since `before` (the one a failed publish
 * made), by their id: each is unmounted at wherever mountinfo shows it now, until it is gone.
 */
async function undoBind(before: Set<number>, spec: BindSpec): Promise<void> {
  for (let i = 0; i < 5; i++) {
    const left = (await readMounts()).filter(
      (m) => !before.has(m.id) && isOurMount(m, spec.identity) && !m.mountPoint.startsWith(`${spec.staging}/`),
    );
    if (!left.length) return;
    for (const m of left) await exec('umount', ['-l', '-c', m.mountPoint]).catch(() => undefined);
  }
}

/** Mounts a daemon that died left in its staging directory: taken down at the next start. */
export async function clearStaging(staging: string): Promise<void> {
  for (const m of (await readMounts().catch(() => [])).filter((x) => x.mountPoint.startsWith(`${staging}/`))) {
    await exec('umount', ['-l', '-c', m.mountPoint]).catch(() => undefined);
  }
  for (const d of await fsp.readdir(staging).catch(() => [] as string[])) await fsp.rmdir(path.join(staging, d)).catch(() => undefined);
}

/**
 * Unmounts what this engine mounted at `target` and removes the directory (unless `keepDir`: a target
 * about to be bound again). A mount that is not a bind of one of our volumes (another pod's tmpfs,
 * another driver's volume) is left alone: 'foreign'. The target is found by name: the directories it
 * lies in are the kubelet's, writable by root only.
 */
export async function unbindTarget(target: string, id: VolumeMountIdentity, keepDir = false): Promise<'unmounted' | 'absent' | 'foreign'> {
  let unmounted = false;
  for (let i = 0; i < 8; i++) {
    const top = topMountAt(await readMounts(), target);
    if (!top) break;
    if (!isOurMount(top, id)) return 'foreign';
    await exec('umount', [target]).catch(() => lazyUnmount(target));
    unmounted = true;
  }
  if (!keepDir) {
    await fsp.rmdir(target).catch((err: unknown) => {
      if (!isNodeError(err, 'ENOENT')) throw err;
    });
  }
  return unmounted ? 'unmounted' : 'absent';
}
