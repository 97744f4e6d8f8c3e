/** A `posttrain` subcommand. `run` returns the process exit code. */
export interface Command {
  /** Words after `posttrain`, e.g. `up` or `data check`. */
  name: string;
  summary: string;
  /** Full help text: usage line and options. */
  help: () => string;
  run: (argv: readonly string[], io: CommandIO) => Promise<number>;
}

export interface CommandIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Resolves when the user asks to stop (SIGINT/SIGTERM). */
  interrupted: Promise<NodeJS.Signals>;
}

/** A usage mistake: printed as one line plus a pointer to --help, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
