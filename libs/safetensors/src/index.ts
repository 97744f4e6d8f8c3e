/**
 * @posttrain/safetensors: reads and writes the safetensors format
 * (https://github.com/huggingface/safetensors), validating the header fully so
 * a corrupt or truncated file gets an error naming the file, the tensor and
 * the problem. Every dtype of the specification is decoded to Float32Array;
 * float32 is written.
 *
 * @example
 * ```ts
 * import { readSafetensorsCheckpoint, writeSafetensorsCheckpoint } from '@posttrain/safetensors';
 * await writeSafetensorsCheckpoint('out/model', new Map([['w', { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }]]));
 * const { tensors } = await readSafetensorsCheckpoint('out/model');
 * tensors.get('w'); // { dtype: 'F32', shape: [2, 2], data: Float32Array [1, 2, 3, 4] }
 * ```
 */
export {
  bf16BitsToF32,
  f16BitsToF32,
  f16DecodeTable,
  f32ToBf16Bits,
  f32ToF16Bits,
  f8e4m3BitsToF32,
  f8e5m2BitsToF32,
} from './half-float';
export {
  checkHeaderLength,
  decodeToFloat32,
  MAX_HEADER_BYTES,
  parseSafetensors,
  parseSafetensorsHeader,
  validateHeader,
} from './parse-safetensors';
export type { DecodedTensor, SafetensorsHeader, SafetensorsHeaderEntry } from './parse-safetensors';
export {
  DEFAULT_MAX_SHARD_BYTES,
  INDEX_FILE_NAME,
  readSafetensorsCheckpoint,
  SINGLE_FILE_NAME,
  writeSafetensorsCheckpoint,
} from './safetensors-checkpoint';
export type { SafetensorsCheckpoint, WriteCheckpointOptions } from './safetensors-checkpoint';
export { DTYPE_SIZES, isSafetensorsDtype } from './safetensors-dtype';
export type { SafetensorsDtype } from './safetensors-dtype';
export { SafetensorsError } from './safetensors-error';
export { pathExists, readSafetensorsFile, readSafetensorsHeader, writeDirAtomic, writeFileAtomic, writeSafetensorsFile } from './safetensors-file';
export { openSafetensors, readSafetensorsFileByTensor, safetensorsFileTensors } from './safetensors-tensors';
export type { RawTensor } from './safetensors-tensors';
export { serializeSafetensors } from './serialize-safetensors';
export type { Float32TensorInput } from './serialize-safetensors';
