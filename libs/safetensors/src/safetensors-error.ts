/**
 * A safetensors file or checkpoint that cannot be read or written. The message
 * names the source (file path or `<buffer>`), the tensor when one is involved,
 * and the problem; the same parts are kept as fields for programmatic use.
 */
export class SafetensorsError extends Error {
  override readonly name = 'SafetensorsError';
  readonly source: string;
  readonly tensor: string | undefined;
  readonly problem: string;

  constructor(source: string, problem: string, tensor?: string) {
    super(`${source}: ${tensor === undefined ? '' : `tensor ${JSON.stringify(tensor)}: `}${problem}`);
    this.source = source;
    this.tensor = tensor;
    this.problem = problem;
  }
}
