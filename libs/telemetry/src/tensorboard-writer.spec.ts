import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c, maskedCrc32c } from './crc32c';
import { TensorBoardWriter } from './tensorboard-writer';

/** Bit-at-a-time CRC-32C, independent of the table-driven one under test. */
function referenceCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function referenceMask(crc: number): number {
  // rotate right by 15 in 32 bits, then add the constant, modulo 2^32 (in plain arithmetic).
  const rotated = (crc >>> 15) + (crc % 2 ** 15) * 2 ** 17;
  return (rotated + 0xa282ead8) % 2 ** 32;
}

/** A minimal protobuf decoder: field number -> list of raw values (bigint varints, Buffers for fixed/len-delimited). */
function decodeProto(buf: Buffer): Map<number, (bigint | Buffer)[]> {
  const out = new Map<number, (bigint | Buffer)[]>();
  let i = 0;
  const varint = (): bigint => {
    let shift = 0n;
    let v = 0n;
    for (;;) {
      const b = buf[i++];
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const field = key >> 3;
    const wt = key & 7;
    let val: bigint | Buffer;
    if (wt === 0) val = varint();
    else if (wt === 1) { val = buf.subarray(i, i + 8); i += 8; }
    else if (wt === 5) { val = buf.subarray(i, i + 4); i += 4; }
    else if (wt === 2) { const n = Number(varint()); val = buf.subarray(i, i + n); i += n; }
    else throw new Error(`unexpected wire type ${wt}`);
    if (!out.has(field)) out.set(field, []);
    out.get(field)!.push(val);
  }
  return out;
}

describe('crc32c', () => {
  // Known test vectors (RFC 3720 appendix B.4, and the common "123456789" check value).
  const vectors: [string, Uint8Array, number][] = [
    ['32 zero bytes', new Uint8Array(32), 0x8a9136aa],
    ['32 0xff bytes', new Uint8Array(32).fill(0xff), 0x62a8ab43],
    ['0..31 ascending', Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
    ['31..0 descending', Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
    ['"123456789"', Buffer.from('123456789'), 0xe3069283],
    ['empty', new Uint8Array(0), 0],
  ];
  for (const [name, bytes, want] of vectors) {
    test(`${name} -> 0x${want.toString(16)}`, () => {
      assert.equal(crc32c(bytes), want);
      assert.equal(referenceCrc32c(bytes), want);
    });
  }
  test('masked form matches the plain-arithmetic rotation and offset', () => {
    for (const [, bytes] of vectors) assert.equal(maskedCrc32c(bytes), referenceMask(referenceCrc32c(bytes)));
  });
});

describe('TensorBoardWriter', () => {
  test('writes TFRecords with valid masked CRCs holding Events with scalar summaries', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tb-'));
    try {
      let clock = 1700000000.25;
      const w = new TensorBoardWriter(dir, { now: () => clock });
      clock += 1;
      w.scalars(3, { 'train/loss': 2.5, 'train/learning_rate': 1e-4 });
      clock += 1;
      w.scalars(7, { 'train/loss': Number.NaN });
      w.close();
      const files = readdirSync(dir);
      assert.equal(files.length, 1);
      assert.match(files[0], /^events\.out\.tfevents\.1700000000\./);
      const buf = readFileSync(join(dir, files[0]));
      const records: Buffer[] = [];
      let off = 0;
      while (off < buf.length) {
        const lenBytes = buf.subarray(off, off + 8);
        const len = Number(lenBytes.readBigUInt64LE(0));
        assert.equal(buf.readUInt32LE(off + 8), referenceMask(referenceCrc32c(lenBytes)), 'length crc');
        const data = buf.subarray(off + 12, off + 12 + len);
        assert.equal(buf.readUInt32LE(off + 12 + len), referenceMask(referenceCrc32c(data)), 'data crc');
        records.push(data);
        off += 16 + len;
      }
      assert.equal(off, buf.length);
      assert.equal(records.length, 3);
      const first = decodeProto(records[0]);
      assert.equal((first.get(1)![0] as Buffer).readDoubleLE(0), 1700000000.25);
      assert.equal((first.get(3)![0] as Buffer).toString('utf8'), 'brain.Event:2');

      const second = decodeProto(records[1]);
      assert.equal((second.get(1)![0] as Buffer).readDoubleLE(0), 1700000001.25);
      assert.equal(second.get(2)![0], 3n);
      const values = decodeProto(second.get(5)![0] as Buffer).get(1)!.map((v) => decodeProto(v as Buffer));
      assert.deepEqual(
        values.map((v) => [(v.get(1)![0] as Buffer).toString('utf8'), (v.get(2)![0] as Buffer).readFloatLE(0)]),
        [['train/loss', 2.5], ['train/learning_rate', Math.fround(1e-4)]],
      );
      const third = decodeProto(records[2]);
      assert.equal(third.get(2)![0], 7n);
      const v3 = decodeProto(decodeProto(third.get(5)![0] as Buffer).get(1)![0] as Buffer);
      assert.ok(Number.isNaN((v3.get(2)![0] as Buffer).readFloatLE(0)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('rejects a bad step and a non-number value, naming them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tb-'));
    try {
      const w = new TensorBoardWriter(dir);
      assert.throws(() => w.scalars(-1, { a: 1 }), /step -1 is not a non-negative integer/);
      assert.throws(() => w.scalars(1, { a: '1' as unknown as number }), /value of "a" is "1", expected a number/);
      w.close();
      assert.throws(() => w.scalars(1, { a: 1 }), /is closed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
