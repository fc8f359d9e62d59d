export const DISK_STATES = ['healthy', 'degraded', 'suspect', 'draining', 'failed'] as const;
export type DiskHealth = (typeof DISK_STATES)[number];

export function isDiskHealth(s: string): s is DiskHealth {
  return (DISK_STATES as readonly string[]).includes(s);
}
/** New fragments go to healthy disks only. */
export function isWritable(h: DiskHealth): boolean {
  return h === 'healthy';
}
/** Reads avoid failed disks; every other state is still read. */
export function isReadable(h: DiskHealth): boolean {
  return h !== 'failed';
}
