import { type Command } from '../command';
import { pipelineOptionsHelp, runPipelineCommand } from './demo';

/** `posttrain experiment`: the demo's pipeline at larger sizes, with the SFT data-size sweep behind claim 1. */
export const experimentCommand: Command = {
  name: 'experiment',
  summary: "the seeds' claims on the built-in task: SFT data-size sweep, reward model, DPO, GRPO from SFT vs base; table + plots",
  help: () =>
    `usage: posttrain experiment [--out DIR] [--seed N] [--quick]\n\nThe demo's pipeline with SFT on every size of the sweep (30, 100, 300, 1000 examples, nested),\nlonger pretraining and more evaluation prompts; reports each claim with its numbers and whether\nit held, a results table and report.html (the sweep plotted as accuracy against SFT examples).\nRL from SFT vs from base (claim 2) is reported as not measured until the RL stages are wired in.\n\nOptions:\n${pipelineOptionsHelp()}\n`,
  run: (argv, io) => runPipelineCommand('experiment', argv, io),
};
