import { formatResultsMarkdown, formatTextTable, modelTable, PipelineCancelledError, pipelinePlan, pipelineProgress, runPipeline, writePipelineArtifacts } from '@posttrain/experiment';
import type { PipelineResult, ServiceLauncher } from '@posttrain/experiment';
import { defineConfig, describeConfig, parseConfig } from '@posttrain/rpc';
import { type Command, type CommandIO } from '../command';
import { startLocalServices } from '../local-services';

const pipelineOptions = defineConfig({
  out: { kind: 'string', flag: 'out', description: 'output directory (must be new or empty); default runs/<name>-<UTC time>' },
  quick: { kind: 'bool', flag: 'quick', description: 'toy sizes: every stage still runs, in well under a minute (for a first look and tests)', default: false },
  seed: { kind: 'int', flag: 'seed', description: 'seed of the task data, the model init and every run', default: 0, min: 0, max: 0xffffffff },
});

/** The options block of `demo` and `experiment` help. */
export function pipelineOptionsHelp(): string {
  return describeConfig(pipelineOptions);
}

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
}

/** The GRPO stages' serving tier: each service a child process on loopback, as `posttrain up` starts them. */
function localLauncher(io: CommandIO): ServiceLauncher {
  let n = 0;
  return async (specs) => {
    n++;
    const labelled = specs.map((s, i) => ({ name: s.name, label: `${s.name}-${n}.${i}`, args: s.args, env: { POSTTRAIN_LOG_LEVEL: 'warn' } }));
    const group = await startLocalServices(
      labelled,
      { host: '127.0.0.1', startupTimeoutMs: 180_000 },
    );
    group.onUnexpectedExit = (label, code, signal) => io.stderr.write(`${label} exited unexpectedly (${signal ?? code})\n`);
    // group.services is in order of readiness; the launcher answers in the order asked.
    const addresses = labelled.map((l) => group.services.find((s) => s.label === l.label)!.address);
    return { addresses, stop: () => group.stop() };
  };
}

function verdict(h: boolean | null): string {
  return h === null ? 'not measured' : h ? 'held' : 'did not hold';
}

/** Runs the demo or experiment pipeline with progress on stderr, then prints the table, the claims and the report's path. */
export async function runPipelineCommand(name: 'demo' | 'experiment', argv: readonly string[], io: CommandIO): Promise<number> {
  const opts = parseConfig(pipelineOptions, { argv });
  const plan = pipelinePlan(name, { quick: opts.quick, seed: opts.seed });
  const out = opts.out ?? `runs/${name}-${stamp()}`;
  const ac = new AbortController();
  void io.interrupted.then((sig) => {
    io.stderr.write(`\n${sig}: stopping at the next step boundary\n`);
    ac.abort();
  });
  io.stderr.write(`posttrain ${name}${opts.quick ? ' --quick' : ''}: writing to ${out}\n`);
  let result: PipelineResult;
  try {
    result = await runPipeline(plan, out, { signal: ac.signal, launchServices: localLauncher(io), onEvent: pipelineProgress(io.stderr as NodeJS.WritableStream & { isTTY?: boolean }) });
  } catch (e) {
    if (e instanceof PipelineCancelledError) {
      io.stderr.write(`posttrain ${name}: ${e.message}; finished stages are kept in ${out}\n`);
      return 130;
    }
    throw e;
  }
  const paths = writePipelineArtifacts(result, formatResultsMarkdown(result));
  io.stdout.write(
    [
      '',
      formatTextTable(modelTable(result)),
      '',
      `reward model: held-out pairwise accuracy ${(100 * result.rewardModelAccuracy).toFixed(1)}%`,
      `stages run: ${result.stages.map((s) => `${s.stage} (${s.seconds.toFixed(0)} s)`).join(', ')}; total ${result.totalSeconds.toFixed(0)} s`,
      result.rlStages.length ? `RL stages: ${result.rlStages.join(', ')}` : result.rlNote,
      '',
      ...result.claims.map((c) => `claim ${c.id}: ${verdict(c.held)}. ${c.measured}`),
      '',
      `results: ${paths.markdown} (and ${paths.json})`,
      `report:  ${paths.report}`,
      '',
    ].join('\n'),
  );
  return 0;
}

/** `posttrain demo`: the embedded default, base -> SFT -> reward model -> DPO and GRPO on a tiny model, in a few minutes on a laptop CPU. */
export const demoCommand: Command = {
  name: 'demo',
  summary: 'watch a tiny model go base -> SFT -> reward model -> DPO / GRPO on the built-in task; table + report.html',
  help: () =>
    `usage: posttrain demo [--out DIR] [--quick] [--seed N]\n\nGenerates the built-in arithmetic task, pretrains a tiny base model from scratch on its corpus,\nthen runs SFT, a reward model, DPO from SFT, and GRPO from SFT and from the base model (samplers,\nreference and reward services started on loopback), evaluating each model (answer accuracy, format\nrate, preference ranking, output entropy). Ends with a results table, the seeds' claims with the\nmeasured numbers, and the path of one report.html with the curves of every stage. No GPU; about\n5-10 minutes on 2 CPU cores (--quick: under a minute, toy sizes).\n\nOptions:\n${pipelineOptionsHelp()}\n`,
  run: (argv, io) => runPipelineCommand('demo', argv, io),
};
