/**
 * The metadata mirror thread: copies the pool's database to the disks' mirror files over a
 * connection of its own. A copy writes and fsyncs a file per disk; on the event loop that stalled
 * the FUSE requests behind it.
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

export interface MirrorWorkerData {
  file: string;
}
export interface MirrorRequest {
  id: number;
  dest: string;
}
export type MirrorReply = { id: number; ok: true } | { id: number; ok: false; message: string };

const port = parentPort;
if (!port) throw new Error('mirror-worker runs as a worker thread');
const db = open((workerData as MirrorWorkerData).file);

/** A plain Error: better-sqlite3's own error class loses its message on the way to the parent thread. */
function open(file: string): Database.Database {
  try {
    const d = new Database(file, { fileMustExist: true });
    d.pragma('busy_timeout = 5000');
    return d;
  } catch (err) {
    throw new Error(`cannot open ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * All pages in one step: a backup that pauses between steps starts over whenever another connection
 * commits, and the event loop's connection commits all the time.
 */
const ALL_PAGES = 0x7fffffff;

port.on('message', (msg: MirrorRequest | 'close') => {
  if (msg === 'close') {
    db.close();
    port.close();
    return;
  }
  db.backup(msg.dest, { progress: () => ALL_PAGES }).then(
    () => port.postMessage({ id: msg.id, ok: true } satisfies MirrorReply),
    (err: unknown) =>
      port.postMessage({ id: msg.id, ok: false, message: err instanceof Error ? err.message : String(err) } satisfies MirrorReply),
  );
});
