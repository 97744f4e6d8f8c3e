import { resolve } from 'node:path';
import { listCheckpoints } from '@posttrain/training';
import { UsageError, type Command } from '../command';
import { rlStageCommand } from './rl-stage';
import { readRunConfigOrUsage, takeSetOverrides, trainStageCommand } from './train-stage';

/** The value of `--config X` or `--config=X` in argv (the stage command parses the rest). */
function configOption(argv: readonly string[]): string {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--config') {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) throw new UsageError('--config: missing the run config file');
      return v;
    }
    if (argv[i].startsWith('--config=')) return argv[i].slice('--config='.length);
  }
  throw new UsageError('missing required option --config (the run config file)');
}

/**
 * `posttrain trainer run --config run.yaml`: one run of any stage, to
 * completion, in this process; the exit code is the run's outcome (0
 * completed, 1 failed, 2 config mistake, 130 stopped by a signal). It is the
 * stage's own command (`posttrain sft|dpo|grpo ...`) picked by the config's
 * `stage`, so the options are the stage's. A run whose directory already
 * holds a checkpoint is resumed: a retried Kubernetes Job pod continues
 * where the last one stopped.
 */
export const trainerRunCommand: Command = {
  name: 'trainer run',
  summary: 'run one run config (any stage) to completion; the exit code is its outcome (the Kubernetes trainer-run Job)',
  help: () =>
    `usage: posttrain trainer run --config run.yaml [--set key=value ...] [the stage's options]\n\n` +
    `Runs the run config's stage as \`posttrain <stage>\` would (see \`posttrain <stage> --help\` for the options)\n` +
    `and exits 0 when the run completes, 1 when it fails, 2 on a config mistake, 130 when stopped by a signal.\n` +
    `A run_id whose directory already holds a checkpoint is resumed from it.\n`,
  run: async (argv, io) => {
    const { overrides, rest } = takeSetOverrides(argv);
    const path = configOption(rest);
    const config = await readRunConfigOrUsage(path, overrides);
    const forward = [...argv];
    if (!config.resume && !rest.includes('--resume') && config.run_id !== null) {
      const checkpoints = await listCheckpoints(resolve(config.output_dir, config.run_id));
      if (checkpoints.length > 0) {
        io.stderr.write(`posttrain trainer run: ${config.run_id} has a checkpoint at step ${checkpoints[checkpoints.length - 1].step}; resuming it\n`);
        forward.push('--resume');
      }
    }
    const stage = config.stage === 'ppo' || config.stage === 'grpo' ? rlStageCommand(config.stage) : trainStageCommand(config.stage);
    io.stderr.write(`posttrain trainer run: stage ${config.stage} from ${path}\n`);
    return stage.run(forward, io);
  },
};
