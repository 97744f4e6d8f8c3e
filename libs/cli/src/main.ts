import { ConfigError } from '@posttrain/flags';
import { UsageError, type Command, type CommandIO } from './command';
import { upCommand } from './commands/up';
import { dataCheckCommand } from './commands/data-check';
import { dataPreviewCommand } from './commands/data-preview';
import { taskGenerateCommand } from './commands/task-generate';
import { MODEL_COMMANDS } from './commands/model';
import { trainStageCommand } from './commands/train-stage';
import { sampleCommand } from './commands/sample';
import { rlStageCommand } from './commands/rl-stage';
import { trainerRunCommand } from './commands/trainer-run';
import { RUNS_COMMANDS } from './commands/runs';
import { demoCommand } from './commands/demo';
import { experimentCommand } from './commands/experiment';
import { evalCommand } from './commands/eval';
import { scoreCommand } from './commands/score';

/** Every subcommand, in the order --help lists them. */
export const COMMANDS: readonly Command[] = [
  demoCommand,
  experimentCommand,
  upCommand,
  trainStageCommand('lm'),
  trainStageCommand('sft'),
  trainStageCommand('rm'),
  trainStageCommand('dpo'),
  rlStageCommand('ppo'),
  rlStageCommand('grpo'),
  trainerRunCommand,
  evalCommand,
  ...RUNS_COMMANDS,
  sampleCommand,
  scoreCommand,
  ...MODEL_COMMANDS,
  dataCheckCommand,
  dataPreviewCommand,
  taskGenerateCommand,
];

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    'posttrain: post-training for language models (SFT, reward models, PPO, DPO, GRPO) as gRPC services',
    '',
    'usage: posttrain <command> [options]',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'Run `posttrain <command> --help` for the options of a command.',
    '',
  ].join('\n');
}

/** Finds the longest command name that prefixes argv (commands may be two words: `data check`). */
function findCommand(argv: readonly string[]): { command: Command; rest: string[] } | undefined {
  let best: { command: Command; rest: string[] } | undefined;
  for (const c of COMMANDS) {
    const words = c.name.split(' ');
    if (words.every((w, i) => argv[i] === w) && (!best || words.length > best.command.name.split(' ').length)) best = { command: c, rest: argv.slice(words.length) };
  }
  return best;
}

/** Runs the CLI and returns the exit code: 0 ok, 1 failure, 2 usage error. */
export async function runCli(argv: readonly string[], io: CommandIO): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    const target = argv[0] === 'help' && argv.length > 1 ? findCommand(argv.slice(1)) : undefined;
    io.stdout.write(target ? target.command.help() : topHelp());
    return 0;
  }
  if (argv[0] === '--version' || argv[0] === 'version') {
    io.stdout.write('posttrain 0.1.0\n');
    return 0;
  }
  const found = findCommand(argv);
  if (!found) {
    const prefix = COMMANDS.filter((c) => c.name.startsWith(argv[0] + ' ')).map((c) => c.name);
    io.stderr.write(prefix.length ? `posttrain: "${argv.join(' ')}" is not a command; did you mean ${prefix.join(', ')}?\n` : `posttrain: unknown command "${argv[0]}"\n\n${topHelp()}`);
    return 2;
  }
  if (found.rest.includes('--help') || found.rest.includes('-h')) {
    io.stdout.write(found.command.help());
    return 0;
  }
  try {
    return await found.command.run(found.rest, io);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      io.stderr.write(`posttrain ${found.command.name}: ${(err as Error).message}\n(run \`posttrain ${found.command.name} --help\` for the options)\n`);
      return 2;
    }
    io.stderr.write(`posttrain ${found.command.name}: ${(err as Error).message}\n`);
    if (process.env.POSTTRAIN_DEBUG) io.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}

/** Process entry point used by bin/posttrain.js. */
export function main(): void {
  const interrupted = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, interrupted }).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`posttrain: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}
