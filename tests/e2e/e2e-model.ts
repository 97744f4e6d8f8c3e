/**
 * The end-to-end specs' model: a 1-layer, hidden-32 Llama with the built-in
 * tokenizer (and its chat template), small enough that the Trainer's runs
 * finish in seconds.
 */
import { initModelDir } from '@posttrain/model';
import { buildBuiltinTokenizerFiles, createBuiltinTokenizer } from '@posttrain/tokenizer';

export async function writeE2eModel(dir: string, seed: number): Promise<void> {
  const tok = createBuiltinTokenizer();
  const files = buildBuiltinTokenizerFiles();
  await initModelDir(dir, { vocabSize: tok.vocabSize, hiddenSize: 32, intermediateSize: 64, numLayers: 1, numHeads: 2, numKvHeads: 2, maxPositionEmbeddings: 256, eosTokenId: tok.eosTokenId, padTokenId: tok.padTokenId }, {
    seed,
    assets: { 'tokenizer.json': JSON.stringify(files.tokenizerJson), 'tokenizer_config.json': JSON.stringify(files.tokenizerConfig), 'special_tokens_map.json': JSON.stringify(files.specialTokensMap) },
  });
}
