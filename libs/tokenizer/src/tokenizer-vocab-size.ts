import { TokenizerError } from './tokenizer-error';

/**
 * One more than the largest token id of a parsed tokenizer.json (its model's
 * vocabulary and its added tokens): the embedding rows a model needs. Reads
 * the JSON only, without building the tokenizer, so checking a model
 * directory stays cheap. `source` names the file in errors.
 */
export function tokenizerVocabSize(tokenizerJson: unknown, source: string): number {
  if (!isObject(tokenizerJson) || !isObject(tokenizerJson.model)) throw new TokenizerError(source, 'must be a JSON object with a "model" object', 'model');
  const vocab = tokenizerJson.model.vocab;
  let maxId = -1;
  if (Array.isArray(vocab)) {
    maxId = vocab.length - 1; // Unigram: [[piece, score], ...], the id is the index
  } else if (isObject(vocab)) {
    for (const [token, id] of Object.entries(vocab)) {
      if (!Number.isInteger(id) || (id as number) < 0) throw new TokenizerError(source, `${JSON.stringify(token)} has id ${JSON.stringify(id)}; expected an integer >= 0`, 'model.vocab');
      if ((id as number) > maxId) maxId = id as number;
    }
  } else {
    throw new TokenizerError(source, `must be an object of token -> id or a list of [piece, score], got ${typeof vocab}`, 'model.vocab');
  }
  const added = tokenizerJson.added_tokens ?? [];
  if (!Array.isArray(added)) throw new TokenizerError(source, 'must be a list', 'added_tokens');
  added.forEach((t, i) => {
    if (!isObject(t) || !Number.isInteger(t.id) || (t.id as number) < 0) throw new TokenizerError(source, `must be {"id": integer >= 0, "content": string, ...}, got ${JSON.stringify(t)}`, `added_tokens[${i}]`);
    if ((t.id as number) > maxId) maxId = t.id as number;
  });
  return maxId + 1;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
