import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readSafetensorsCheckpoint, writeSafetensorsCheckpoint } from './safetensors-checkpoint';
import { readSafetensorsFile, readSafetensorsHeader, writeSafetensorsFile } from './safetensors-file';
import { serializeSafetensors } from './serialize-safetensors';

let root = '';
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'safetensors-spec-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

// a: 2x2 (16 bytes), b: 3 (12 bytes), c: 1 (4 bytes), d: 4 (16 bytes); 48 bytes in all.
function sample(): Map<string, { shape: number[]; data: Float32Array }> {
  return new Map([
    ['a', { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }],
    ['b', { shape: [3], data: new Float32Array([-1, 0.5, 1e-3]) }],
    ['c', { shape: [1], data: new Float32Array([42]) }],
    ['d', { shape: [4], data: new Float32Array([9, 8, 7, 6]) }],
  ]);
}

function assertSameTensors(actual: Map<string, { shape: number[]; data: Float32Array }>, expected: ReturnType<typeof sample>): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [name, t] of expected) {
    assert.deepEqual(actual.get(name)?.shape, t.shape, name);
    assert.deepEqual([...(actual.get(name)?.data ?? [])], [...t.data], name);
  }
}

describe('safetensors files', () => {
  test('write then read round trip, with no temp file left behind', async () => {
    const dir = join(root, 'file');
    await writeSafetensorsCheckpoint(dir, new Map()); // creates the directory
    const path = join(dir, 'x.safetensors');
    await writeSafetensorsFile(path, sample(), { format: 'pt' });
    const back = await readSafetensorsFile(path);
    assertSameTensors(back.tensors, sample());
    assert.deepEqual(back.metadata, { format: 'pt' });
    assert.deepEqual((await readdir(dir)).sort(), ['model.safetensors', 'x.safetensors']);
  });

  test('readSafetensorsHeader reads names, shapes and offsets without the data', async () => {
    const path = join(root, 'header.safetensors');
    await writeSafetensorsFile(path, sample(), { format: 'pt' });
    const header = await readSafetensorsHeader(path);
    // name order, 4 bytes per element: a [0,16) b [16,28) c [28,32) d [32,48)
    assert.deepEqual(
      header.entries.map((e) => [e.name, e.dtype, e.shape, e.dataOffsets]),
      [
        ['a', 'F32', [2, 2], [0, 16]],
        ['b', 'F32', [3], [16, 28]],
        ['c', 'F32', [1], [28, 32]],
        ['d', 'F32', [4], [32, 48]],
      ],
    );
    assert.deepEqual(header.metadata, { format: 'pt' });
    assert.equal(header.dataLength, 48);
    const cut = join(root, 'cut.safetensors');
    const bytes = serializeSafetensors(sample());
    await writeFile(cut, bytes.slice(0, bytes.length - 1));
    await assert.rejects(readSafetensorsHeader(cut), /cut\.safetensors: tensor "d": data_offsets \[32, 48\] run past the end of the data buffer \(47 bytes\)/);
    await assert.rejects(readSafetensorsHeader(join(root, 'none.safetensors')), /none\.safetensors: file not found/);
    await writeFile(cut, new Uint8Array(3));
    await assert.rejects(readSafetensorsHeader(cut), /file is 3 bytes, too short/);
  });

  test('a missing file and a corrupt file name the path', async () => {
    await assert.rejects(readSafetensorsFile(join(root, 'nope.safetensors')), /nope\.safetensors: file not found/);
    const bad = join(root, 'bad.safetensors');
    await writeFile(bad, serializeSafetensors(sample()).slice(0, 40));
    await assert.rejects(readSafetensorsFile(bad), new RegExp(`${bad.replace(/[.]/g, '\\.')}: header length \\d+ runs past the end`));
  });
});

describe('checkpoints', () => {
  test('unsharded when under maxShardBytes', async () => {
    const dir = join(root, 'single');
    await writeSafetensorsCheckpoint(dir, sample(), { metadata: { format: 'pt' } });
    assert.deepEqual(await readdir(dir), ['model.safetensors']);
    const ckpt = await readSafetensorsCheckpoint(dir);
    assertSameTensors(ckpt.tensors, sample());
    assert.deepEqual(ckpt.files, ['model.safetensors']);
    assert.deepEqual(ckpt.metadata, { format: 'pt' });
  });

  test('sharded round trip: greedy shards in name order and a correct index', async () => {
    const dir = join(root, 'sharded');
    // Limit 30 bytes: [a(16) + b(12) = 28], [c(4) + d(16) = 20] -> 2 shards.
    await writeSafetensorsCheckpoint(dir, sample(), { maxShardBytes: 30 });
    assert.deepEqual((await readdir(dir)).sort(), [
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
    ]);
    const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8'));
    assert.deepEqual(index, {
      metadata: { total_size: 48 },
      weight_map: {
        a: 'model-00001-of-00002.safetensors',
        b: 'model-00001-of-00002.safetensors',
        c: 'model-00002-of-00002.safetensors',
        d: 'model-00002-of-00002.safetensors',
      },
    });
    const ckpt = await readSafetensorsCheckpoint(dir);
    assertSameTensors(ckpt.tensors, sample());
    assert.deepEqual([...ckpt.tensors.keys()], ['a', 'b', 'c', 'd']);

    // Re-saving unsharded removes the index and the old shards, so the reader cannot pick stale weights.
    await writeSafetensorsCheckpoint(dir, new Map([['z', { shape: [1], data: new Float32Array([5]) }]]));
    assert.deepEqual(await readdir(dir), ['model.safetensors']);
    assert.deepEqual([...(await readSafetensorsCheckpoint(dir)).tensors.keys()], ['z']);
  });

  test('a tensor larger than the limit gets its own shard', async () => {
    const dir = join(root, 'big');
    await writeSafetensorsCheckpoint(dir, sample(), { maxShardBytes: 8 }); // every tensor is over 8 bytes but c
    const files = (await readdir(dir)).filter((f) => f.endsWith('.safetensors'));
    assert.equal(files.length, 4); // a | b | c | d: c (4) + d (16) > 8
    assertSameTensors((await readSafetensorsCheckpoint(dir)).tensors, sample());
  });

  test('index validation: missing shard, missing tensor, extra tensor, misplaced tensor, bad index', async () => {
    const make = async (name: string): Promise<string> => {
      const dir = join(root, name);
      await writeSafetensorsCheckpoint(dir, sample(), { maxShardBytes: 30 });
      return dir;
    };
    const indexOf = (dir: string) => join(dir, 'model.safetensors.index.json');
    const editIndex = async (dir: string, edit: (map: Record<string, string>) => void) => {
      const index = JSON.parse(await readFile(indexOf(dir), 'utf8'));
      edit(index.weight_map);
      await writeFile(indexOf(dir), JSON.stringify(index));
    };

    const missingShard = await make('missing-shard');
    await unlink(join(missingShard, 'model-00002-of-00002.safetensors'));
    await assert.rejects(
      readSafetensorsCheckpoint(missingShard),
      /model\.safetensors\.index\.json: weight_map names shard "model-00002-of-00002\.safetensors" \(for tensor "c"\), which does not exist/,
    );

    const extraInMap = await make('missing-tensor');
    await editIndex(extraInMap, (m) => (m.e = 'model-00001-of-00002.safetensors'));
    await assert.rejects(readSafetensorsCheckpoint(extraInMap), /tensor "e": weight_map says shard "model-00001-of-00002\.safetensors" but the tensor is not in it/);

    const notInMap = await make('extra-tensor');
    await editIndex(notInMap, (m) => delete m.b);
    await assert.rejects(readSafetensorsCheckpoint(notInMap), /tensor "b": tensor is in shard "model-00001-of-00002\.safetensors" but not listed in weight_map/);

    const misplaced = await make('misplaced');
    await editIndex(misplaced, (m) => (m.b = 'model-00002-of-00002.safetensors'));
    await assert.rejects(readSafetensorsCheckpoint(misplaced), /tensor "b": tensor is in shard "model-00001-of-00002\.safetensors" but weight_map says "model-00002-of-00002\.safetensors"/);

    const escaping = await make('escaping');
    await editIndex(escaping, (m) => (m.a = '../secret.safetensors'));
    await assert.rejects(readSafetensorsCheckpoint(escaping), /tensor "a": "weight_map" value must be a shard file name inside the directory/);

    const badJson = await make('bad-json');
    await writeFile(indexOf(badJson), '{"weight_map": ');
    await assert.rejects(readSafetensorsCheckpoint(badJson), /model\.safetensors\.index\.json: cannot read index/);

    await assert.rejects(readSafetensorsCheckpoint(join(root, 'empty-dir-that-does-not-exist')), /no model\.safetensors or model\.safetensors\.index\.json/);
  });

  test('maxShardBytes is validated', async () => {
    await assert.rejects(writeSafetensorsCheckpoint(join(root, 'v'), sample(), { maxShardBytes: 0 }), /maxShardBytes must be a positive integer, got 0/);
  });
});
