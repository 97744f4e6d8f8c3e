/**
 * A TensorBoard event-file writer with no native dependency (tfjs-node's
 * writer needs libtensorflow). An event file is a sequence of TFRecords:
 *   uint64 length (LE) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
 * where each record is a serialised `tensorflow.Event` protobuf. The first one
 * carries file_version "brain.Event:2"; each later one a Summary of scalar
 * values (tensorflow/core/util/event.proto, summary.proto):
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
 *   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
 */
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { AppendFile } from './append-file';
import { maskedCrc32c } from './crc32c';

/** Protobuf wire format helpers (only the wire types an Event needs). */
class ProtoWriter {
  private parts: number[] = [];

  private varint(value: bigint | number): void {
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.parts.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.parts.push(Number(v));
  }

  private key(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  int64(field: number, value: number): this {
    this.key(field, 0);
    this.varint(BigInt(Math.trunc(value)));
    return this;
  }

  double(field: number, value: number): this {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(value);
    return this.fixed(field, 1, b);
  }

  float(field: number, value: number): this {
    const b = Buffer.alloc(4);
    b.writeFloatLE(value);
    return this.fixed(field, 5, b);
  }

  /** A fixed-width field (wire type 1: 64-bit, 5: 32-bit), its bytes little-endian. */
  private fixed(field: number, wireType: 1 | 5, bytes: Uint8Array): this {
    this.key(field, wireType);
    this.parts.push(...bytes);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.key(field, 2);
    this.varint(value.length);
    this.parts.push(...value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** One serialised Event with a scalar summary per entry of `scalars`. */
export function encodeScalarEvent(step: number, wallTime: number, scalars: Record<string, number>): Uint8Array {
  const summary = new ProtoWriter();
  for (const [tag, value] of Object.entries(scalars)) {
    summary.bytes(1, new ProtoWriter().string(1, tag).float(2, value).finish());
  }
  return new ProtoWriter().double(1, wallTime).int64(2, step).bytes(5, summary.finish()).finish();
}

/** The Event that opens every event file. */
export function encodeFileVersionEvent(wallTime: number): Uint8Array {
  return new ProtoWriter().double(1, wallTime).string(3, 'brain.Event:2').finish();
}

/** TFRecord framing of one record. */
export function frameTfRecord(data: Uint8Array): Buffer {
  const header = Buffer.alloc(8);
  header.writeBigUInt64LE(BigInt(data.length));
  const out = Buffer.alloc(8 + 4 + data.length + 4);
  header.copy(out, 0);
  out.writeUInt32LE(maskedCrc32c(header), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

export interface TensorBoardWriterOptions {
  /** Clock for wall_time (seconds since the epoch); defaults to Date.now() / 1000. */
  now?: () => number;
  /** File name suffix after the host name (TensorBoard reads every events.out.tfevents.* file). */
  suffix?: string;
}

/**
 * Appends scalar summaries to `<logDir>/events.out.tfevents.<seconds>.<host><suffix>`.
 * Non-finite values are written as they are (TensorBoard shows NaN/inf).
 *
 *     const tb = new TensorBoardWriter('runs/sft-1');
 *     tb.scalars(10, { 'train/loss': 2.31, 'train/learning_rate': 1e-4 });
 *     tb.close();
 */
export class TensorBoardWriter {
  readonly path: string;
  private readonly file: AppendFile;
  private readonly now: () => number;

  constructor(logDir: string, options: TensorBoardWriterOptions = {}) {
    this.now = options.now ?? (() => Date.now() / 1000);
    mkdirSync(logDir, { recursive: true });
    const t = this.now();
    this.path = join(logDir, `events.out.tfevents.${Math.floor(t)}.${hostname()}${options.suffix ?? ''}`);
    this.file = new AppendFile(this.path, 'TensorBoardWriter');
    this.writeRecord(encodeFileVersionEvent(t));
  }

  /** Writes one event holding every scalar of `scalars` at `step`. */
  scalars(step: number, scalars: Record<string, number>): void {
    if (!Number.isInteger(step) || step < 0) throw new Error(`TensorBoardWriter.scalars: step ${JSON.stringify(step)} is not a non-negative integer`);
    for (const [tag, v] of Object.entries(scalars)) {
      if (typeof v !== 'number') throw new Error(`TensorBoardWriter.scalars: value of ${JSON.stringify(tag)} is ${JSON.stringify(v)}, expected a number`);
    }
    if (Object.keys(scalars).length === 0) return;
    this.writeRecord(encodeScalarEvent(step, this.now(), scalars));
  }

  /** Forces what was written to disk. */
  flush(): void {
    this.file.flush();
  }

  close(): void {
    this.file.close();
  }

  private writeRecord(data: Uint8Array): void {
    this.file.append(() => frameTfRecord(data));
  }
}
