import { isUtf8 } from 'node:buffer';

/**
 * File names (and symlink targets) are byte strings on Linux: any bytes but '/' and NUL. Inside the
 * engine they are JavaScript strings, so that the namespace, the caches and the reports can treat
 * them as text; a byte that is not part of valid UTF-8 is held as the lone surrogate U+DC80 + byte
 * (Python's "surrogateescape"). Valid UTF-8 never decodes to a lone surrogate, so the mapping is
 * one to one: `caf\xe8` and `caf\xe9` stay two names, and the bytes come back exactly as given.
 *
 * Most names are valid UTF-8 and take the fast path (one validation in C++, then the ordinary
 * decoder); only odd names are walked byte by byte.
 */

const ESCAPE_BASE = 0xdc00;

/** The engine's string for the name bytes `b` (from `start` to `end`). */
export function decodeName(b: Buffer, start = 0, end = b.length): string {
  const view = start === 0 && end === b.length ? b : b.subarray(start, end);
  if (isUtf8(view)) return view.toString('utf8');
  let out = '';
  let i = 0;
  while (i < view.length) {
    const len = utf8SequenceAt(view, i);
    if (len > 0) {
      out += view.toString('utf8', i, i + len);
      i += len;
    } else {
      out += String.fromCharCode(ESCAPE_BASE + view[i]);
      i++;
    }
  }
  return out;
}

/** The bytes of the engine's name string `s` (the inverse of decodeName). */
export function encodeName(s: string): Buffer {
  if (s.isWellFormed()) return Buffer.from(s, 'utf8');
  const parts: Buffer[] = [];
  let run = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xdc80 && c <= 0xdcff) {
      if (run) parts.push(Buffer.from(run, 'utf8'));
      run = '';
      parts.push(Buffer.of(c - ESCAPE_BASE));
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff) {
      run += s[i] + s[i + 1];
      i++;
    } else {
      // Any other lone surrogate cannot come from decodeName; it is encoded as U+FFFD like Buffer.from does.
      run += s[i];
    }
  }
  if (run) parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

/** Length in bytes of the name `s` (NAME_MAX counts bytes). */
export function nameByteLength(s: string): number {
  return s.isWellFormed() ? Buffer.byteLength(s) : encodeName(s).length;
}

/** True when the engine's string for a name holds bytes that are not UTF-8 (it is stored as a BLOB). */
export function hasEscapedBytes(s: string): boolean {
  return !s.isWellFormed();
}

/**
 * A name as a terminal may show it: bytes that are not valid UTF-8 as \xNN, control characters as
 * \n, \t or \xNN, a backslash doubled. What `ls -b` does, so a name cannot move the cursor or forge
 * a line of output.
 */
export function printableName(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (c >= 0xdc80 && c <= 0xdcff) out += `\\x${(c - ESCAPE_BASE).toString(16).padStart(2, '0')}`;
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f || (c >= 0x80 && c < 0xa0)) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out;
}

/** The length of the valid UTF-8 sequence starting at b[i], or 0 when the byte there starts none. */
function utf8SequenceAt(b: Buffer, i: number): number {
  const c = b[i];
  if (c < 0x80) return 1;
  let len: number;
  let min: number;
  if (c >= 0xc2 && c <= 0xdf) [len, min] = [2, 0x80];
  else if (c >= 0xe0 && c <= 0xef) [len, min] = [3, 0x800];
  else if (c >= 0xf0 && c <= 0xf4) [len, min] = [4, 0x10000];
  else return 0;
  if (i + len > b.length) return 0;
  let cp = c & (0xff >> (len + 1));
  for (let k = 1; k < len; k++) {
    const cc = b[i + k];
    if ((cc & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}
