import type { ScoreItem } from '@posttrain/proto';
import { scoreItems } from '@posttrain/rewards';
import { CORRECT_COMPONENT, FORMAT_COMPONENT, taskRewardComponents } from './task-reward';

/** Accuracy and format compliance of a batch of replies, item by item and on average. */
export interface TaskEvaluation {
  readonly n: number;
  /** Fraction of replies whose "Answer:" line holds the right number. */
  readonly accuracy: number;
  /** Fraction of replies that end with an "Answer: ..." line, right or wrong. */
  readonly formatRate: number;
  /** Mean of the task reward (correct + 0.1 * format), the number RL maximises. */
  readonly meanReward: number;
  /** Per reply: 1 correct, 0 not. */
  readonly correct: readonly number[];
  /** Per reply: 1 well-formed, 0 not. */
  readonly formatted: readonly number[];
  readonly rewards: readonly number[];
}

function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/**
 * Scores replies against their answers with the task's own reward
 * ({@link taskRewardComponents}, through libs/rewards' scoreItems), so that the
 * numbers an experiment reports are the very rewards RL trained on.
 * `completions[i]` answers the problem whose ground truth is `answers[i]`.
 */
export async function evaluateCompletions(completions: readonly string[], answers: readonly string[]): Promise<TaskEvaluation> {
  if (!Array.isArray(completions) || completions.length === 0) throw new Error(`completions: got ${JSON.stringify(completions)}, expected a non-empty list of strings`);
  if (!Array.isArray(answers) || answers.length !== completions.length) {
    throw new Error(`answers: got ${Array.isArray(answers) ? `${answers.length} answers` : JSON.stringify(answers)}, expected one per completion (${completions.length})`);
  }
  answers.forEach((a, i) => {
    if (typeof a !== 'string' || a.trim() === '') throw new Error(`answers[${i}]: got ${JSON.stringify(a)}, expected a non-empty string such as "632"`);
  });
  const items: ScoreItem[] = completions.map((completion, i) => ({
    id: String(i),
    prompt: '',
    promptMessages: [],
    completion,
    groundTruth: answers[i],
    completionTokenIds: [],
  }));
  const components = taskRewardComponents();
  const scores = await scoreItems(items, components, { componentsField: 'task reward', itemsField: 'completions' });
  const column = (name: string): number[] => {
    const j = components.findIndex((c) => c.name === name);
    return scores.map((s) => s.components[j].value);
  };
  const correct = column(CORRECT_COMPONENT);
  const formatted = column(FORMAT_COMPONENT);
  const rewards = scores.map((s) => s.reward);
  return { n: completions.length, accuracy: mean(correct), formatRate: mean(formatted), meanReward: mean(rewards), correct, formatted, rewards };
}
