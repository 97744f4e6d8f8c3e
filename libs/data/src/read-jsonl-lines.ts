import { createReadStream } from 'node:fs';

/** One physical line of a JSONL file, with where its bytes are. */
export interface RawLine {
  /** 1-based line number. */
  line: number;
  /** Byte offset of the line's first byte. */
  offset: number;
  /** Length in bytes, without the line terminator. */
  byteLength: number;
  /** The decoded text without the terminator (and without a trailing '\r' or a leading byte-order mark), or null if the bytes are not valid UTF-8. */
  text: string | null;
}

const NEWLINE = 0x0a;
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes a line's bytes; strips a '\r' terminator half and a byte-order mark; null for invalid UTF-8. */
export function decodeLine(bytes: Uint8Array): string | null {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return null;
  }
  if (text.endsWith('\r')) text = text.slice(0, -1);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return text;
}

/**
 * Streams the lines of a file in chunks (never the whole file in memory),
 * keeping each line's byte offset so that it can be read again directly
 * (see {@link IndexedDataFile}). A final line without a newline counts; an
 * empty file has no lines.
 */
export async function* readJsonlLines(file: string, chunkBytes = 1 << 16): AsyncGenerator<RawLine> {
  const stream = createReadStream(file, { highWaterMark: chunkBytes });
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let lineStart = 0;
  let position = 0;
  let line = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, from);
      if (nl < 0) break;
      const piece = chunk.subarray(from, nl);
      const bytes = pendingBytes === 0 ? piece : Buffer.concat([...pending, piece]);
      line++;
      yield { line, offset: lineStart, byteLength: bytes.length, text: decodeLine(bytes) };
      pending = [];
      pendingBytes = 0;
      lineStart = position + nl + 1;
      from = nl + 1;
    }
    if (from < chunk.length) {
      // Copy: the stream may reuse its chunk buffers.
      const rest = Buffer.from(chunk.subarray(from));
      pending.push(rest);
      pendingBytes += rest.length;
    }
    position += chunk.length;
  }
  if (pendingBytes > 0) {
    const bytes = Buffer.concat(pending);
    line++;
    yield { line, offset: lineStart, byteLength: bytes.length, text: decodeLine(bytes) };
  }
}
