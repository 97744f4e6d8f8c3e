import { endianness } from 'node:os';
import { f16DecodeTable, f8e4m3BitsToF32, f8e5m2BitsToF32 } from './half-float';
import { DTYPE_SIZES, isSafetensorsDtype, type SafetensorsDtype } from './safetensors-dtype';
import { SafetensorsError } from './safetensors-error';

/** A tensor decoded to float32. `data` may be a view into the parsed buffer (see parseSafetensors). */
export interface DecodedTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array;
}

/** One validated header entry; offsets are relative to the start of the data buffer. */
export interface SafetensorsHeaderEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  dataOffsets: [number, number];
}

/** The validated header of a safetensors buffer. */
export interface SafetensorsHeader {
  /** Byte offset of the data buffer in the file (8 + header length). */
  dataStart: number;
  /** Length of the data buffer in bytes. */
  dataLength: number;
  /** Entries in file order of their data. */
  entries: SafetensorsHeaderEntry[];
  metadata: Record<string, string>;
}

/** A header larger than this is treated as corrupt (the reference implementation caps it at 100 MB too). */
export const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/**
 * Reads and validates the header of a safetensors buffer without decoding any
 * tensor: header length bounds, UTF-8, JSON, entry fields, dtypes, shapes,
 * offsets against the data buffer, byte lengths against shapes, duplicate
 * names, overlaps and holes (the specification requires the tensors to cover
 * the data buffer exactly).
 */
export function parseSafetensorsHeader(bytes: Uint8Array, source = '<buffer>'): SafetensorsHeader {
  const headerLength = checkHeaderLength(bytes.subarray(0, 8), bytes.byteLength, source);
  return validateHeader(bytes.subarray(8, 8 + headerLength), bytes.byteLength, source);
}

/**
 * Reads the 8-byte header length of a file of `fileSize` bytes and checks its
 * bounds (at least 2, at most the file size - 8 and MAX_HEADER_BYTES).
 */
export function checkHeaderLength(first8: Uint8Array, fileSize: number, source = '<buffer>'): number {
  const fail = (problem: string): never => {
    throw new SafetensorsError(source, problem);
  };
  if (fileSize < 8 || first8.byteLength < 8) {
    fail(`file is ${fileSize} bytes, too short for the 8-byte header length (truncated or not a safetensors file)`);
  }
  const headerLengthBig = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  const maxByFile = fileSize - 8;
  if (headerLengthBig < 2n) fail(`header length is ${headerLengthBig}, expected at least 2 (an empty JSON object "{}")`);
  if (headerLengthBig > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${headerLengthBig} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt header length)`);
  }
  if (headerLengthBig > BigInt(maxByFile)) {
    fail(`header length ${headerLengthBig} runs past the end of the file (${fileSize} bytes, so at most ${maxByFile}): file truncated?`);
  }
  return Number(headerLengthBig);
}

/** Validates the header bytes (after the 8-byte length) of a file of `fileSize` bytes. */
export function validateHeader(headerBytes: Uint8Array, fileSize: number, source = '<buffer>'): SafetensorsHeader {
  const fail: (problem: string, tensor?: string) => never = (problem, tensor) => {
    throw new SafetensorsError(source, problem, tensor);
  };
  const dataStart = 8 + headerBytes.byteLength;
  const dataLength = fileSize - dataStart;
  if (dataLength < 0) fail(`header of ${headerBytes.byteLength} bytes does not fit in a file of ${fileSize} bytes`);

  let headerText = '';
  try {
    headerText = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    fail('header is not valid UTF-8');
  }
  if (!headerText.startsWith('{')) fail(`header must start with "{", found ${JSON.stringify(headerText.slice(0, 20))}`);
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (err) {
    fail(`header is not valid JSON: ${(err as Error).message}`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('header must be a JSON object');

  // JSON.parse keeps the last of duplicate keys silently; a duplicated tensor name means a corrupt header.
  const seen = new Set<string>();
  for (const key of topLevelKeys(headerText)) {
    if (seen.has(key)) fail(key === '__metadata__' ? 'duplicate "__metadata__" entry' : 'duplicate tensor name in header', key === '__metadata__' ? undefined : key);
    seen.add(key);
  }

  const metadata: Record<string, string> = {};
  const entries: SafetensorsHeaderEntry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        fail(`"__metadata__" must be an object of string values, got ${describe(raw)}`);
      }
      for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof value !== 'string') fail(`"__metadata__.${key}" must be a string, got ${describe(value)}`);
        metadata[key] = value as string;
      }
      continue;
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      fail(`entry must be an object {dtype, shape, data_offsets}, got ${describe(raw)}`, name);
    }
    const info = raw as Record<string, unknown>;
    const dtype = info.dtype;
    if (!isSafetensorsDtype(dtype)) {
      fail(`unknown dtype ${describe(dtype)}, expected one of ${Object.keys(DTYPE_SIZES).join(', ')}`, name);
    }
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`"shape" must be an array of non-negative integers, got ${describe(shape)}`, name);
    }
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`"data_offsets" must be [begin, end] with non-negative integers, got ${describe(offsets)}`, name);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(`data_offsets [${begin}, ${end}]: begin is after end`, name);
    if (end > dataLength) {
      fail(`data_offsets [${begin}, ${end}] run past the end of the data buffer (${dataLength} bytes): file truncated?`, name);
    }
    let elements = 1;
    for (const d of shape as number[]) elements *= d;
    const expected = elements * DTYPE_SIZES[dtype as SafetensorsDtype];
    if (!Number.isSafeInteger(expected) || expected !== end - begin) {
      fail(
        `byte length ${end - begin} (data_offsets [${begin}, ${end}]) does not match shape [${(shape as number[]).join(', ')}] x ${DTYPE_SIZES[dtype as SafetensorsDtype]} bytes (${dtype}) = ${expected}`,
        name,
      );
    }
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape: [...(shape as number[])], dataOffsets: [begin, end] });
  }

  // Sorted by (begin, end), the tensors must tile [0, dataLength) exactly: no overlap, no hole.
  entries.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let cursor = 0;
  let previous: string | undefined;
  for (const entry of entries) {
    const [begin, end] = entry.dataOffsets;
    if (begin < cursor) {
      fail(`data_offsets [${begin}, ${end}] overlap tensor ${JSON.stringify(previous)} (which ends at ${cursor})`, entry.name);
    }
    if (begin > cursor) {
      fail(`hole in the data buffer: bytes [${cursor}, ${begin}) belong to no tensor (the data must be contiguous)`, entry.name);
    }
    cursor = end;
    previous = entry.name;
  }
  if (cursor !== dataLength) {
    fail(`data buffer has ${dataLength} bytes but the tensors cover only [0, ${cursor}): ${dataLength - cursor} trailing bytes belong to no tensor`);
  }
  return { dataStart, dataLength, entries, metadata };
}

/**
 * Parses a complete safetensors buffer. Every tensor is decoded to float32.
 * F32 data whose absolute offset is 4-byte aligned (the usual case: writers
 * pad the header to 8 bytes) is returned as a Float32Array view sharing
 * memory with `bytes`, without a copy; otherwise it is copied once. Copy
 * (`data.slice()`) before mutating if `bytes` must stay intact.
 */
export function parseSafetensors(
  bytes: Uint8Array,
  source = '<buffer>',
): { tensors: Map<string, DecodedTensor>; metadata: Record<string, string> } {
  const header = parseSafetensorsHeader(bytes, source);
  const tensors = new Map<string, DecodedTensor>();
  for (const entry of header.entries) {
    const start = header.dataStart + entry.dataOffsets[0];
    const byteLength = entry.dataOffsets[1] - entry.dataOffsets[0];
    const data = decodeToFloat32(bytes, start, byteLength, entry.dtype);
    tensors.set(entry.name, { dtype: entry.dtype, shape: entry.shape, data });
  }
  // Name order, not file order: callers iterate it, and name order is what every writer sorts by anyway.
  const sorted = new Map([...tensors.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { tensors: sorted, metadata: header.metadata };
}

/** Decodes `byteLength` bytes at `start` of `bytes` (little-endian, `dtype`) to float32. */
export function decodeToFloat32(bytes: Uint8Array, start: number, byteLength: number, dtype: SafetensorsDtype): Float32Array {
  const count = byteLength / DTYPE_SIZES[dtype];
  const absolute = bytes.byteOffset + start;
  if (dtype === 'F32' && LITTLE_ENDIAN_HOST) {
    if (absolute % 4 === 0) return new Float32Array(bytes.buffer, absolute, count);
    const out = new Float32Array(count);
    new Uint8Array(out.buffer).set(bytes.subarray(start, start + byteLength));
    return out;
  }
  const view = new DataView(bytes.buffer, absolute, byteLength);
  const out = new Float32Array(count);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case 'F16': {
      const table = f16DecodeTable();
      for (let i = 0; i < count; i++) out[i] = table[view.getUint16(2 * i, true)];
      break;
    }
    case 'BF16': {
      // bf16 is the top half of an f32: write the bits straight into the output's words
      // (Uint32Array and Float32Array share the host's byte order, so this holds on any host).
      const words = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) words[i] = view.getUint16(2 * i, true) << 16;
      break;
    }
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case 'I64':
      for (let i = 0; i < count; i++) out[i] = Number(view.getBigInt64(8 * i, true));
      break;
    case 'U64':
      for (let i = 0; i < count; i++) out[i] = Number(view.getBigUint64(8 * i, true));
      break;
    case 'I32':
      for (let i = 0; i < count; i++) out[i] = view.getInt32(4 * i, true);
      break;
    case 'U32':
      for (let i = 0; i < count; i++) out[i] = view.getUint32(4 * i, true);
      break;
    case 'I16':
      for (let i = 0; i < count; i++) out[i] = view.getInt16(2 * i, true);
      break;
    case 'U16':
      for (let i = 0; i < count; i++) out[i] = view.getUint16(2 * i, true);
      break;
    case 'I8':
      for (let i = 0; i < count; i++) out[i] = view.getInt8(i);
      break;
    case 'U8':
      for (let i = 0; i < count; i++) out[i] = view.getUint8(i);
      break;
    case 'BOOL':
      for (let i = 0; i < count; i++) out[i] = view.getUint8(i) === 0 ? 0 : 1;
      break;
    case 'F8_E4M3':
      for (let i = 0; i < count; i++) out[i] = f8e4m3BitsToF32(view.getUint8(i));
      break;
    case 'F8_E5M2':
      for (let i = 0; i < count; i++) out[i] = f8e5m2BitsToF32(view.getUint8(i));
      break;
  }
  return out;
}

/** The keys of the top-level object of a JSON text that JSON.parse has already accepted. */
function topLevelKeys(json: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    else if (c === '"') {
      const start = i;
      for (i++; json[i] !== '"'; i++) if (json[i] === '\\') i++;
      if (depth === 1) {
        let j = i + 1;
        while (j < json.length && ' \t\r\n'.includes(json[j])) j++;
        if (json[j] === ':') keys.push(JSON.parse(json.slice(start, i + 1)) as string);
      }
    }
  }
  return keys;
}

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
