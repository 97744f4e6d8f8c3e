import type { ChatMessage } from '@posttrain/tokenizer';
import type { ServedModel } from './served-model';
import { invalidField } from './serving-error';

/** A prompt given as text, or as chat messages rendered with the model's chat template and its generation prompt. */
export type PromptText = { text: string } | { messages: readonly ChatMessage[] };

/**
 * The token ids of a text or chat prompt under the served model's tokenizer.
 * Throws ServingError (invalid-argument) naming `field` (the prompt, e.g.
 * `prompts[2]`): no tokenizer, a template or text that cannot be tokenised,
 * no tokens, or an id outside the model's vocabulary.
 */
export function tokenizePrompt(served: ServedModel, prompt: PromptText, field: string): number[] {
  const inputField = `${field}.${'text' in prompt ? 'text' : 'messages'}`;
  const tokenizer = served.tokenizer;
  if (!tokenizer) throw invalidField(inputField, `this model (${served.dir}) has no tokenizer.json; send token_ids`);
  let ids: number[];
  try {
    ids = 'text' in prompt ? tokenizer.encode(prompt.text) : tokenizer.encodeChatIds(prompt.messages, { addGenerationPrompt: true });
  } catch (e) {
    throw invalidField(inputField, `cannot be tokenised: ${(e as Error).message}`);
  }
  if (ids.length === 0) throw invalidField(`${field}.text`, 'tokenises to no tokens');
  const vocabSize = served.model.config.vocabSize;
  const outside = ids.findIndex((id) => id >= vocabSize);
  if (outside >= 0) throw invalidField(field, `tokenises to id ${ids[outside]}, outside the model's vocabulary of ${vocabSize}`);
  return ids;
}
