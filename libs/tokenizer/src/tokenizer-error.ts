/**
 * A tokenizer directory, file, key or input that cannot be used. The message
 * names the file (or `<input>`), the key when one is involved, and the problem.
 */
export class TokenizerError extends Error {
  override readonly name = 'TokenizerError';
  readonly file: string;
  readonly key: string | undefined;
  readonly problem: string;

  constructor(file: string, problem: string, key?: string) {
    super(`${file}: ${key === undefined ? '' : `"${key}": `}${problem}`);
    this.file = file;
    this.key = key;
    this.problem = problem;
  }
}
