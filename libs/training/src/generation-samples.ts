/**
 * A few of an online step's generations with their rewards, for people to
 * read (the Trainer's run events, the dashboard's "Recent samples"). Bounded
 * so that run histories stay small; trainer.proto's GenerationSamples
 * documents the same bounds.
 */

export interface GenerationSample {
  /** The prompt as the policy saw it (chat template applied). */
  prompt: string;
  /** The generated completion. */
  completion: string;
  /** The reward service's score of the completion, before any KL penalty. */
  reward: number;
}

/** Samples per step at most. */
export const MAX_GENERATION_SAMPLES = 8;
/** Characters (UTF-16 code units) of a prompt or completion at most; a cut text ends in "...". */
export const MAX_SAMPLE_CHARS = 500;

/** `text` cut to `max` characters, ending in "..." when cut (never inside a surrogate pair). */
export function truncateSampleText(text: string, max = MAX_SAMPLE_CHARS): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max - 3);
  const last = text.charCodeAt(end - 1);
  if (end > 0 && last >= 0xd800 && last <= 0xdbff) end--;
  return text.slice(0, end) + '...';
}

/** At most MAX_GENERATION_SAMPLES samples, texts cut to MAX_SAMPLE_CHARS. */
export function boundGenerationSamples(samples: readonly GenerationSample[]): GenerationSample[] {
  return samples.slice(0, MAX_GENERATION_SAMPLES).map((s) => ({ prompt: truncateSampleText(s.prompt), completion: truncateSampleText(s.completion), reward: s.reward }));
}

/** `count` indices spread evenly over [0, length) (all of them when length <= count): one per GRPO group rather than one group's. */
export function spreadIndices(length: number, count: number): number[] {
  if (length <= count) return Array.from({ length }, (_, i) => i);
  return Array.from({ length: count }, (_, k) => Math.floor((k * length) / count));
}
