import * as tf from '@tensorflow/tfjs-core';

/**
 * The parts of `BackendWasm` (tfjs-backend-wasm 4.22) that the kernels in this
 * package use. The package's own typings expose these members, but through an
 * Emscripten module type whose declaration is not installed, so we restate the
 * few members we touch, structurally.
 */
export interface WasmTensorData {
  id: number;
  memoryOffset: number;
  shape: number[];
  dtype: tf.DataType;
  refCount: number;
}

export interface WasmModuleLike {
  HEAPU8: Uint8Array;
  cwrap(name: string, returnType: null | 'number', argTypes: string[]): (...args: unknown[]) => unknown;
  tfjs: {
    registerTensor(id: number, size: number, memoryOffset: number): void;
    disposeData(id: number): void;
  };
}

export interface WasmBackendLike {
  wasm: WasmModuleLike;
  dataIdMap: { get(dataId: object): WasmTensorData | undefined };
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): tf.TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  /** Raises a buffer's reference count (a kernel output that shares its input's buffer, as `Reshape` does). */
  incRef(dataId: object): void;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** Narrows a kernel's backend argument, failing loudly if it is not the wasm backend. */
export function asWasmBackend(backend: unknown): WasmBackendLike {
  const b = backend as Partial<WasmBackendLike> | null;
  if (b == null || b.wasm == null || b.dataIdMap == null || typeof b.makeOutput !== 'function') {
    throw new Error('@posttrain/backend: expected the tfjs wasm backend object, got something else');
  }
  return b as WasmBackendLike;
}

/** The wasm-side tensor id and heap byte offset of a tensor's data. */
export function wasmData(backend: WasmBackendLike, info: tf.TensorInfo): WasmTensorData {
  const d = backend.dataIdMap.get(info.dataId);
  if (d === undefined) throw new Error(`@posttrain/backend: tensor data of shape [${info.shape.join(',')}] is not on the wasm backend`);
  return d;
}

/**
 * Registers a wasm-side tensor id that aliases `size` floats of existing heap
 * memory (a zero-copy view). `dispose_data` on the C++ side only forgets the
 * id and runs its disposal callbacks (XNNPACK operator caches); it never frees
 * memory, which stays owned by the tensor the view points into.
 */
export class HeapViews {
  private readonly ids: number[] = [];
  constructor(private readonly backend: WasmBackendLike) {}

  view(memoryOffset: number, size: number): number {
    const backendIds = this.backend as unknown as { dataIdNextNumber: number };
    const id = backendIds.dataIdNextNumber++;
    this.backend.wasm.tfjs.registerTensor(id, size, memoryOffset);
    this.ids.push(id);
    return id;
  }

  release(id: number): void {
    const i = this.ids.lastIndexOf(id);
    if (i < 0) return;
    this.ids.splice(i, 1);
    this.backend.wasm.tfjs.disposeData(id);
  }

  releaseAll(): void {
    for (const id of this.ids) this.backend.wasm.tfjs.disposeData(id);
    this.ids.length = 0;
  }
}
