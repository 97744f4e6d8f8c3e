import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsError } from './safetensors-error';
import { readSafetensorsFile } from './safetensors-file';
import { readSafetensorsFileByTensor, safetensorsFileTensors } from './safetensors-tensors';
import { serializeSafetensors } from './serialize-safetensors';

async function fileOf(bytes: Uint8Array): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'posttrain-st-')), 'model.safetensors');
  await writeFile(path, bytes);
  return path;
}

const tensors = new Map([
  ['b', { shape: [3], data: new Float32Array([1, -2, 3.5]) }],
  ['a', { shape: [2, 2], data: new Float32Array([0.25, 4, -8, 16]) }],
]);

describe('reading a safetensors file tensor by tensor', () => {
  test('each tensor from its own offset into its own buffer; the same tensors and metadata as reading the whole file', async () => {
    const path = await fileOf(serializeSafetensors(tensors, { format: 'pt' }));
    const raw: { name: string; bytes: number; offset: number }[] = [];
    for await (const t of safetensorsFileTensors(path)) raw.push({ name: t.entry.name, bytes: t.bytes.byteLength, offset: t.bytes.byteOffset });
    assert.deepEqual(raw.map((r) => [r.name, r.bytes]).sort(), [['a', 16], ['b', 12]]);
    assert.ok(raw.every((r) => r.offset === 0));
    const byTensor = await readSafetensorsFileByTensor(path);
    const whole = await readSafetensorsFile(path);
    assert.deepEqual([...byTensor.tensors.keys()], ['a', 'b']);
    for (const [name, t] of whole.tensors) assert.deepEqual({ ...byTensor.tensors.get(name)!, data: [...byTensor.tensors.get(name)!.data] }, { ...t, data: [...t.data] });
    assert.deepEqual(byTensor.metadata, { format: 'pt' });
  });

  test('a truncated file is refused from its header, naming the file; a missing file too', async () => {
    const bytes = serializeSafetensors(tensors);
    const path = await fileOf(bytes);
    await truncate(path, bytes.byteLength - 4);
    await assert.rejects(readSafetensorsFileByTensor(path), (e: unknown) => e instanceof SafetensorsError && e.message.includes(path));
    await assert.rejects(readSafetensorsFileByTensor(join(tmpdir(), 'no-such-dir-x', 'm.safetensors')), /file not found/);
  });
});
