/**
 * @posttrain/native-kernels: an optional N-API addon that runs float32
 * kernels on the memory of the tfjs wasm backend with the platform BLAS
 * (OpenBLAS on Linux, Accelerate on macOS). `@posttrain/backend` registers
 * them as wasm kernels; when the addon is absent everything runs on plain wasm.
 *
 * @example
 * ```ts
 * import { loadNativeKernels } from '@posttrain/native-kernels';
 * const { addon, status } = loadNativeKernels(); // addon null when not built or POSTTRAIN_NATIVE=0
 * console.log(status.reason, status.blas, status.threads);
 * ```
 */
export { loadNativeKernels, setBlasThreads, blasThreadsFromEnv, pinKernels, kernelsFromConfig } from './load-native-kernels';
export type { KernelChoice, NativeAddon, NativeStatus } from './load-native-kernels';
