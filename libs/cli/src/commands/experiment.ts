import { type Command } from '../command';
import { pipelineOptionsHelp, runPipelineCommand } from './demo';

/** `posttrain experiment`: the demo's pipeline at larger sizes, with the SFT data-size sweep behind claim 1. */
export const experimentCommand: Command = {
  name: 'experiment',
  summary: "the seeds' claims over 3 seeds: SFT data-size sweep, RL from SFT vs base, reward model + PPO, DPO; mean ± spread, plots",
  help: () =>
    `usage: posttrain experiment [--out DIR] [--seeds 0,1,2] [--jobs N] [--parallel-stages N] [--quick] [--from-scratch] [--base-model DIR] [--dashboard-port N | --no-dashboard]\n\nThe demo's pipeline once per seed (default 0, 1, 2), from the shipped base model, with SFT on every\nsize of the sweep (10, 30, 100, 300, 1000 examples, nested), and more evaluation prompts (200; the\ndemo's 128); RL and the other stages as in the demo.\nThe claims are judged on the seeds pooled: the mean, with a standard error from the evaluation\nitems and the spread across seeds; a difference inside 2 SE is "not shown". Writes results.md,\nresults.json and one report.html (a section per claim with its plot, every seed drawn), and each\nseed's own run under seed-N/. The seeds run at once, each in its own process (--jobs N: at most N;\n--jobs 1: one after another in this process), their lines prefixed [seed N]; the numbers do not\ndepend on it. 14 to 50 minutes on 2 CPU cores, by the host's speed (--quick: toy sizes). A live dashboard is served on\n127.0.0.1 while it runs (--jobs 1: one, each seed's stages as runs seed-N/<stage>; otherwise one\nper seed); its address is printed first.\n\nOptions:\n${pipelineOptionsHelp()}\n`,
  run: (argv, io) => runPipelineCommand('experiment', argv, io),
};
