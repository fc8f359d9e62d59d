import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

/** Runs a command as the unprivileged user nobody (uid 65534, no supplementary groups), as a local user or a pod would. */
export function asNobody(cmd: string[], options: { input?: string } = {}): { code: number | null; out: string } {
  const r = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', ...cmd], {
    encoding: 'utf8',
    input: options.input,
  });
  return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** The system's Python (the one on root's PATH may live where nobody cannot reach it). */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** Lets other users walk down to `dir` (tests make their roots 0700 with mkdtemp). */
export function openPathTo(dir: string): void {
  fs.chmodSync(dir, 0o755);
}

/** A file's permission bits. */
export function modeOf(p: string): number {
  return fs.lstatSync(p).mode & 0o7777;
}
