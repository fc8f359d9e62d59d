/** What the main thread and the /dev/fuse reader threads (reader-worker.ts) share. */
export interface ReaderData {
  fd: number;
  slots: SharedArrayBuffer[];
  /** One Int32 per slot: FREE or BUSY. */
  states: SharedArrayBuffer;
}

export const FREE = 0;
export const BUSY = 1;

export type ReaderMessage = { slot: number; length: number } | { end: string };
