import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describeBackend, getBackendInfo, initBackend } from '@posttrain/backend';
import type { AnswerEvaluation, CompleteFn, EvalData, PreferenceEvaluation } from '@posttrain/experiment';
import { EvalDataError, evaluateAnswers, evaluatePreferences, modelCompleteFn, pairLogProbs, readEvalData, tokenizePairs } from '@posttrain/experiment';
import type { LlamaModel } from '@posttrain/model';
import { loadModel } from '@posttrain/model';
import { loadTokenizer } from '@posttrain/tokenizer';
import { defineConfig, describeConfig, parseConfig } from '@posttrain/flags';
import { requireModelDir } from '../model-dir';
import { UsageError, type Command } from '../command';
import { readRulesFile } from './score';

const options = defineConfig({
  model: { kind: 'string', flag: 'model', description: 'model directory (HF layout with tokenizer files) to evaluate (required)' },
  data: { kind: 'string', flag: 'data', description: 'JSONL of prompt-only records with answers ({"prompt","answer"}) or preference pairs ({"prompt","chosen","rejected"}) (required)' },
  n: { kind: 'int', flag: 'n', description: 'evaluate only the first N records', min: 1 },
  maxNewTokens: { kind: 'int', flag: 'max-new-tokens', description: 'tokens to generate at most per reply (answers)', default: 64, min: 1 },
  batchSize: { kind: 'int', flag: 'batch-size', description: 'prompts or sequences per forward batch', default: 16, min: 1 },
  rules: { kind: 'string', flag: 'rules', description: "reward components (YAML/JSON list, as `posttrain score`) to score replies with, instead of the embedded task's (numeric match after \"Answer:\" + format)" },
  groundTruthField: { kind: 'string', flag: 'ground-truth-field', description: 'column holding the answer (default: answer, then ground_truth, solution)' },
  perToken: { kind: 'bool', flag: 'per-token', description: 'rank preference pairs by mean log-prob per token instead of the summed log-prob (either over each reply through its first EOS token, where generation stops)', default: false },
  json: { kind: 'bool', flag: 'json', description: 'print the result as one JSON object', default: false },
});

export interface EvalOutcome {
  kind: 'answers' | 'preferences';
  model: string;
  data: string;
  n: number;
  answers?: Omit<AnswerEvaluation, 'samples'>;
  preferences?: { rankedBy: 'summed log-prob' | 'log-prob per token'; accuracy: number; ties: number; meanMargin: number };
}

/** Loads a policy; a reward model (score head only) cannot generate or give log-probs of replies. */
async function loadPolicy(dir: string): Promise<LlamaModel> {
  const model = await loadModel(dir);
  if (!model.heads.lm) {
    model.dispose();
    throw new UsageError(`--model ${dir}: a sequence-classification (reward) model without an LM head; eval needs a causal LM (use the reward service to score with a reward model)`);
  }
  return model;
}

const pct = (x: number | null): string => (x === null ? 'n/a' : `${(100 * x).toFixed(1)}%`);

/** The evaluation behind `posttrain eval`, with the reply generator injectable (tests pass a stub for answers). */
export async function runEvaluation(
  data: EvalData,
  modelDir: string,
  o: { n?: number; maxNewTokens: number; batchSize: number; rulesFile?: string; perToken: boolean },
  complete?: CompleteFn,
): Promise<EvalOutcome> {
  const components = o.rulesFile ? readRulesFile(o.rulesFile) : undefined;
  if (data.kind === 'answers') {
    const items = o.n ? data.items.slice(0, o.n) : data.items;
    let fn = complete;
    let dispose = (): void => undefined;
    if (!fn) {
      const model = await loadPolicy(modelDir);
      const tokenizer = await loadTokenizer(modelDir);
      fn = modelCompleteFn(model, tokenizer, { maxNewTokens: o.maxNewTokens, temperature: 0, batchSize: o.batchSize });
      dispose = () => model.dispose();
    }
    try {
      const { samples: _samples, ...answers } = await evaluateAnswers(items, fn, { components, batchSize: o.batchSize });
      return { kind: 'answers', model: modelDir, data: data.file, n: items.length, answers };
    } finally {
      dispose();
    }
  }
  if (o.rulesFile) throw new UsageError(`--rules applies to prompt-only data with answers; ${data.file} holds preference pairs`);
  const lines = o.n ? data.lines.slice(0, o.n) : data.lines;
  const model = await loadPolicy(modelDir);
  try {
    const tokenizer = await loadTokenizer(modelDir);
    const ev: PreferenceEvaluation = evaluatePreferences(pairLogProbs(model, tokenizePairs(lines, tokenizer, data.file), o.batchSize));
    const r = o.perToken ? ev.perToken : ev.summed;
    return { kind: 'preferences', model: modelDir, data: data.file, n: lines.length, preferences: { rankedBy: o.perToken ? 'log-prob per token' : 'summed log-prob', accuracy: r.accuracy, ties: r.ties, meanMargin: r.meanMargin } };
  } finally {
    model.dispose();
  }
}

/** Human-readable lines of an outcome. */
export function formatEvalOutcome(r: EvalOutcome): string {
  if (r.answers) {
    const a = r.answers;
    const comps = Object.entries(a.components).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ');
    return `${r.n} prompts from ${r.data}, model ${r.model}\nanswer accuracy ${pct(a.accuracy)}\nformat rate     ${pct(a.formatRate)}\nmean reward     ${a.meanReward.toFixed(4)} (components: ${comps})\n`;
  }
  const p = r.preferences!;
  return `${r.n} preference pairs from ${r.data}, model ${r.model}\npreference accuracy ${pct(p.accuracy)} (ranked by ${p.rankedBy}; ${p.ties} ties count as wrong)\nmean margin         ${p.meanMargin.toFixed(4)} nats\n`;
}

/** `posttrain eval --model DIR --data F.jsonl`: answer accuracy on prompts with answers, or preference accuracy on pairs. */
export const evalCommand: Command = {
  name: 'eval',
  summary: 'answer accuracy (greedy replies) or preference accuracy (log-probs) of a model on a JSONL file',
  help: () =>
    `usage: posttrain eval --model DIR --data F.jsonl [options]\n\nWith prompt-only records that carry answers, generates a greedy reply per prompt and scores it\n(default: the embedded task's reward, numeric match after "Answer:" and the format rule; or --rules).\nWith preference pairs, reports how often the chosen reply has the higher log-prob under the model.\n\nOptions:\n${describeConfig(options)}\n`,
  run: async (argv, io) => {
    const opts = parseConfig(options, { argv });
    if (!opts.model) throw new UsageError('missing --model DIR (a model directory with config.json)');
    if (!opts.data) throw new UsageError('missing --data F.jsonl (prompts with answers, or preference pairs)');
    requireModelDir(opts.model, '--model');
    if (!existsSync(join(opts.model, 'tokenizer.json'))) throw new UsageError(`--model ${opts.model}: no tokenizer.json; eval needs the model's tokenizer beside its weights`);
    let data: EvalData;
    try {
      data = await readEvalData(opts.data, opts.groundTruthField ? { groundTruthField: opts.groundTruthField } : {});
    } catch (e) {
      if (e instanceof EvalDataError) throw new UsageError(e.message);
      throw e;
    }
    const backend = getBackendInfo() ?? (await initBackend({ logger: { info: () => undefined } }));
    io.stderr.write(`backend: ${describeBackend(backend)}\n`);
    const outcome = await runEvaluation(data, opts.model, { n: opts.n, maxNewTokens: opts.maxNewTokens, batchSize: opts.batchSize, rulesFile: opts.rules, perToken: opts.perToken });
    io.stdout.write(opts.json ? JSON.stringify(outcome) + '\n' : formatEvalOutcome(outcome));
    return 0;
  },
};
