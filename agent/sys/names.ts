/**
 * File names are bytes; the agent's paths are strings. A name that is valid UTF-8 is its
 * string. A byte that is not part of valid UTF-8 becomes the lone surrogate U+DC00 + byte
 * (as Python's "surrogateescape" does): valid UTF-8 never decodes to a lone surrogate, so the
 * mapping is exact both ways and such a name is never mistaken for another (Node's own
 * decoding turns those bytes into U+FFFD, which names a different file or none).
 *
 * Clients see such a path with `\xHH` escapes (and its backslashes doubled) in each component
 * that holds raw bytes; components that are valid UTF-8 are shown as they are.
 */

/** A lone U+DC80..U+DCFF (one not ending a surrogate pair): an escaped byte. */
const RAW_BYTE = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/;
const RAW_BYTES = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/g;

/** True when the path holds bytes that are not UTF-8 (as escaped by nameFromBytes). */
export function hasRawBytes(name: string): boolean {
  return RAW_BYTE.test(name);
}

/** The length of the valid UTF-8 sequence at `at`, or 0 when the byte there starts none. */
function sequenceAt(bytes: Uint8Array, at: number): number {
  const lead = bytes[at]!;
  if (lead < 0x80) return 1;
  // The second byte's range for each lead byte (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF).
  let length: number;
  let low = 0x80;
  let high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) length = 2;
  else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead === 0xe0) low = 0xa0;
    if (lead === 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead === 0xf0) low = 0x90;
    if (lead === 0xf4) high = 0x8f;
  } else return 0;
  if (at + length > bytes.length) return 0;
  const second = bytes[at + 1]!;
  if (second < low || second > high) return 0;
  for (let i = 2; i < length; i++) if ((bytes[at + i]! & 0xc0) !== 0x80) return 0;
  return length;
}

/** A name (or path) read from the file system as the agent's string. */
export function nameFromBytes(bytes: Buffer): string {
  const text = bytes.toString("utf8");
  if (Buffer.byteLength(text) === bytes.length && Buffer.from(text, "utf8").equals(bytes)) return text;
  let out = "";
  for (let at = 0; at < bytes.length; ) {
    const length = sequenceAt(bytes, at);
    if (length === 0) {
      out += String.fromCharCode(0xdc00 + bytes[at]!);
      at++;
    } else {
      out += bytes.toString("utf8", at, at + length);
      at += length;
    }
  }
  return out;
}

/** The bytes an agent's string names (the inverse of nameFromBytes). */
export function nameBytes(name: string): Buffer {
  if (!hasRawBytes(name)) return Buffer.from(name, "utf8");
  const parts: Buffer[] = [];
  let from = 0;
  for (const match of name.matchAll(RAW_BYTES)) {
    parts.push(Buffer.from(name.slice(from, match.index), "utf8"), Buffer.of(match[0].charCodeAt(0) - 0xdc00));
    from = match.index + 1;
  }
  parts.push(Buffer.from(name.slice(from), "utf8"));
  return Buffer.concat(parts);
}

/** What a system call takes for a name: the string itself when it is UTF-8, else its bytes NUL-terminated. */
export function cName(name: string): string | Buffer {
  return hasRawBytes(name) ? Buffer.concat([nameBytes(name), Buffer.of(0)]) : name;
}

/** Bytes of the UTF-8 encoding (raw bytes count one each). */
export function byteLength(name: string): number {
  return hasRawBytes(name) ? nameBytes(name).length : Buffer.byteLength(name);
}

const hex = (byte: number) => byte.toString(16).toUpperCase().padStart(2, "0");

/** A path as clients see it: components with raw bytes get `\xHH` escapes and `\\` for a backslash. */
export function displayPath(rel: string): string {
  if (!hasRawBytes(rel)) return rel;
  return rel
    .split("/")
    .map((part) => (hasRawBytes(part) ? part.replace(/\\/g, "\\\\").replace(RAW_BYTES, (c) => `\\x${hex(c.charCodeAt(0) - 0xdc00)}`) : part))
    .join("/");
}

/**
 * The agent's path for a path as displayPath shows it. A component is read as escaped only
 * when it is exactly what displayPath makes of some name that is not UTF-8; any other is
 * taken literally (so a name that is valid UTF-8 stays itself, backslashes and all).
 */
export function parseDisplayPath(shown: string): string {
  if (!shown.includes("\\x")) return shown;
  return shown.split("/").map(parseComponent).join("/");
}

function parseComponent(part: string): string {
  if (!part.includes("\\x")) return part;
  let out = "";
  for (let at = 0; at < part.length; ) {
    if (part[at] !== "\\") {
      out += part[at++];
    } else if (part[at + 1] === "\\") {
      out += "\\";
      at += 2;
    } else if (part[at + 1] === "x" && /^[89A-F][0-9A-F]$/.test(part.slice(at + 2, at + 4))) {
      out += String.fromCharCode(0xdc00 + Number.parseInt(part.slice(at + 2, at + 4), 16));
      at += 4;
    } else {
      return part;
    }
  }
  // Escapes of bytes that form valid UTF-8 are never shown: such a component is literal.
  return hasRawBytes(out) && nameFromBytes(nameBytes(out)) === out && displayPath(out) === part ? out : part;
}
