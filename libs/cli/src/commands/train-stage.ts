import { loadRunConfig, RunConfigError, runStage, type OfflineStage, type RunConfig, type Stage } from '@posttrain/training';
import { defineConfig, describeConfig, parseConfig } from '@posttrain/flags';
import { UsageError, type Command } from '../command';

const options = defineConfig({
  config: { kind: 'string', flag: 'config', description: 'run config (YAML or JSON); see examples/configs/', required: true },
  resume: { kind: 'bool', flag: 'resume', description: 'continue <output_dir>/<run_id> from its last checkpoint (same as --set resume=true)', default: false },
  progress: { kind: 'bool', flag: 'progress', description: 'progress bar on a terminal, log lines otherwise (--no-progress: neither)', default: true },
  json: { kind: 'bool', flag: 'json', description: 'print the result as one JSON object at the end', default: false },
});

const TITLES: Record<OfflineStage, string> = {
  lm: 'causal language modelling (pretraining) on {"text"} records',
  sft: 'supervised fine-tuning (assistant-only loss, packing, LoRA)',
  rm: 'reward-model training (Bradley-Terry on the scalar head)',
  dpo: 'direct preference optimisation (sigmoid, ipo, hinge, robust)',
};

/** Pulls every `--set key=value` (or `--set=key=value`) out of argv. */
export function takeSetOverrides(argv: readonly string[]): { overrides: string[]; rest: string[] } {
  const overrides: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--set') {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) throw new UsageError('--set: missing key=value');
      overrides.push(v);
      i++;
    } else if (a.startsWith('--set=')) overrides.push(a.slice('--set='.length));
    else rest.push(a);
  }
  for (const o of overrides) if (!/^[A-Za-z0-9_.]+=/.test(o)) throw new UsageError(`--set: got "${o}", expected key=value with a dotted key (e.g. train.learning_rate=3e-4)`);
  return { overrides, rest };
}

/** A run config of any stage with its `--set` overrides; a mistake is a usage error naming the key. */
export async function readRunConfigOrUsage(path: string, overrides: readonly string[]): Promise<RunConfig> {
  try {
    return await loadRunConfig(path, overrides);
  } catch (err) {
    if (err instanceof RunConfigError) throw new UsageError(err.message);
    throw err;
  }
}

/**
 * Reads the run config of `posttrain <stage>` (every stage command: lm, sft,
 * rm, dpo, ppo, grpo) with its `--set` overrides; a mistake, or a config of
 * another stage, is a usage error naming the key.
 */
export async function loadStageConfig(stage: Stage, path: string, overrides: readonly string[]): Promise<RunConfig> {
  const config = await readRunConfigOrUsage(path, overrides);
  if (config.stage !== stage) throw new UsageError(`${path}: stage is "${config.stage}", but this is \`posttrain ${stage}\`; run \`posttrain ${config.stage}\` or set stage: ${stage}`);
  return config;
}

/** `posttrain lm|sft|rm|dpo --config run.yaml [--set key=value ...]`: one offline training stage in this process. */
export function trainStageCommand(stage: OfflineStage): Command {
  return {
    name: stage,
    summary: `train: ${TITLES[stage]}`,
    help: () =>
      `usage: posttrain ${stage} --config run.yaml [--set key=value ...] [options]\n\n${TITLES[stage]}.\nWrites <output_dir>/<run_id>/: config.json (resolved), metrics.jsonl, TensorBoard event files,\ncheckpoints/, model/ and report.html. Ctrl-C stops at the next step boundary and keeps the last\ncheckpoint; --resume continues from it.\n\nOptions:\n${describeConfig(options)}\n  --set <key=value>             override a config key (repeatable), typed like the file: train.max_steps=50\n`,
    run: async (argv, io) => {
      const { overrides, rest } = takeSetOverrides(argv);
      const opts = parseConfig(options, { argv: rest });
      if (opts.resume) overrides.push('resume=true');
      const config = await loadStageConfig(stage, opts.config, overrides);
      const controller = new AbortController();
      void io.interrupted.then((sig) => {
        io.stderr.write(`posttrain ${stage}: ${sig}: stopping at the next step boundary (the last checkpoint is kept)\n`);
        controller.abort();
      });
      const result = await runStage(config, { signal: controller.signal, progress: opts.progress });
      if (opts.json) io.stdout.write(JSON.stringify(result) + '\n');
      else {
        io.stdout.write(`${result.status === 'completed' ? 'completed' : 'cancelled'} ${result.runId} at step ${result.step}/${result.totalSteps}${result.skippedSteps ? ` (${result.skippedSteps} skipped)` : ''}\n`);
        io.stdout.write(`  run dir:  ${result.runDir}\n  report:   ${result.runDir}/report.html\n`);
        if (result.modelDir) io.stdout.write(`  model:    ${result.modelDir}\n`);
        if (result.adapterDir) io.stdout.write(`  adapter:  ${result.adapterDir}\n`);
        const show = (m: Record<string, number>) =>
          Object.entries(m)
            .slice(0, 8)
            .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toPrecision(4)}`)
            .join('  ');
        if (Object.keys(result.lastMetrics).length) io.stdout.write(`  last:     ${show(result.lastMetrics)}\n`);
        if (result.lastEval) io.stdout.write(`  eval:     ${show(result.lastEval)}\n`);
      }
      return result.status === 'completed' ? 0 : 130;
    },
  };
}
