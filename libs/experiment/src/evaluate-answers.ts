import type { RewardComponent, ScoreItem } from '@posttrain/proto';
import { scoreItems } from '@posttrain/rewards';
import { CORRECT_COMPONENT, FORMAT_COMPONENT, taskRewardComponents } from '@posttrain/task';
import type { ChatMessage } from '@posttrain/tokenizer';
import type { AnswerItem } from './read-eval-data';

/** Turns prompts into replies (greedy generation from a model, or a stub in tests); one reply per prompt, in order. */
export type CompleteFn = (prompts: readonly (string | ChatMessage[])[]) => Promise<string[]>;

export interface AnswerEvaluation {
  n: number;
  /** Mean of the `correct` component (the task's numeric match); null when the reward spec has no component of that name. */
  accuracy: number | null;
  /** Mean of the `format` component; null when the spec has none. */
  formatRate: number | null;
  /** Mean weighted reward (what RL maximises). */
  meanReward: number;
  /** Mean of each component's value, by component name. */
  components: Record<string, number>;
  /** Every reply with its answer and reward, in input order. */
  samples: { line: number; prompt: string; completion: string; answer: string; reward: number; components: Record<string, number> }[];
}

export interface EvaluateAnswersOptions {
  /** Reward components (libs/rewards); default the task's own spec (correct + 0.1 format). */
  components?: RewardComponent[];
  /** Prompts per call of `complete`; default 32. */
  batchSize?: number;
  /** Called after each batch with the number of replies done. */
  onProgress?: (done: number, total: number) => void;
}

function promptText(prompt: string | ChatMessage[]): string {
  return typeof prompt === 'string' ? prompt : prompt.map((m) => m.content).join('\n');
}

/**
 * Answer accuracy of a policy: each prompt is completed by `complete`, then
 * scored against its answer with the reward components through libs/rewards'
 * scoreItems, the very code RL rewards go through, so "accuracy" here and
 * "reward" in training agree.
 */
export async function evaluateAnswers(items: readonly AnswerItem[], complete: CompleteFn, options: EvaluateAnswersOptions = {}): Promise<AnswerEvaluation> {
  if (items.length === 0) throw new Error('items: got an empty list, expected at least one prompt with an answer');
  const batchSize = options.batchSize ?? 32;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize: got ${JSON.stringify(batchSize)}, expected a positive integer`);
  const components = options.components ?? taskRewardComponents();
  const completions: string[] = [];
  for (let s = 0; s < items.length; s += batchSize) {
    const chunk = items.slice(s, s + batchSize);
    const out = await complete(chunk.map((it) => it.prompt));
    if (!Array.isArray(out) || out.length !== chunk.length) throw new Error(`complete: returned ${Array.isArray(out) ? out.length : typeof out} replies for ${chunk.length} prompts`);
    completions.push(...out);
    options.onProgress?.(completions.length, items.length);
  }
  const scoreInput: ScoreItem[] = items.map((it, i) => ({
    id: String(it.line),
    prompt: typeof it.prompt === 'string' ? it.prompt : '',
    promptMessages: typeof it.prompt === 'string' ? [] : it.prompt.map((m) => ({ role: m.role, content: m.content })),
    completion: completions[i],
    groundTruth: it.answer,
    completionTokenIds: [],
  }));
  const scores = await scoreItems(scoreInput, components, { componentsField: 'rules', itemsField: 'data' });
  const means: Record<string, number> = {};
  components.forEach((c, j) => {
    let sum = 0;
    for (const s of scores) sum += s.components[j].value;
    means[c.name] = sum / scores.length;
  });
  const meanReward = scores.reduce((a, s) => a + s.reward, 0) / scores.length;
  return {
    n: items.length,
    accuracy: CORRECT_COMPONENT in means ? means[CORRECT_COMPONENT] : null,
    formatRate: FORMAT_COMPONENT in means ? means[FORMAT_COMPONENT] : null,
    meanReward,
    components: means,
    samples: items.map((it, i) => ({
      line: it.line,
      completion: completions[i],
      answer: it.answer,
      reward: scores[i].reward,
      components: Object.fromEntries(components.map((c, j) => [c.name, scores[i].components[j].value])),
      prompt: promptText(it.prompt),
    })),
  };
}
