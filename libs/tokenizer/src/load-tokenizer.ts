import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ChatTemplate, type TemplateSpecialTokens } from './chat-template';
import type { ChatMessage, EncodedChat, Tokenizer } from './tokenizer';
import { TokenizerError } from './tokenizer-error';

/** The parsed contents of a tokenizer directory (Hugging Face layout). */
export interface TokenizerFiles {
  /** `tokenizer.json` */
  tokenizerJson: unknown;
  /** `tokenizer_config.json` */
  tokenizerConfig: unknown;
  /** `special_tokens_map.json`, consulted for special tokens that tokenizer_config.json does not name. */
  specialTokensMap?: unknown;
  /** `chat_template.jinja`, used when tokenizer_config.json has no "chat_template" (newer transformers save it apart). */
  chatTemplateJinja?: string;
}

const SPECIAL_TOKEN_KEYS = ['bos_token', 'eos_token', 'pad_token', 'unk_token'] as const;
type SpecialTokenKey = (typeof SPECIAL_TOKEN_KEYS)[number];

/**
 * Loads `tokenizer.json` (through @huggingface/tokenizers), `tokenizer_config.json`
 * (special tokens, chat template) and, when present, `special_tokens_map.json`
 * and `chat_template.jinja` from a model directory.
 */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const tokenizerJson = await readJson(join(dir, 'tokenizer.json'), true);
  const tokenizerConfig = await readJson(join(dir, 'tokenizer_config.json'), true);
  const specialTokensMap = await readJson(join(dir, 'special_tokens_map.json'), false);
  let chatTemplateJinja: string | undefined;
  try {
    chatTemplateJinja = await readFile(join(dir, 'chat_template.jinja'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new TokenizerError(join(dir, 'chat_template.jinja'), `cannot read: ${(err as Error).message}`);
  }
  return createTokenizer({ tokenizerJson, tokenizerConfig, specialTokensMap, chatTemplateJinja }, dir);
}

/** Builds a Tokenizer from already-parsed files; `dir` only names them in errors. */
export function createTokenizer(files: TokenizerFiles, dir = '<memory>'): Tokenizer {
  const jsonName = join(dir, 'tokenizer.json');
  const configName = join(dir, 'tokenizer_config.json');
  const mapName = join(dir, 'special_tokens_map.json');
  const json = files.tokenizerJson;
  if (!isObject(json)) throw new TokenizerError(jsonName, 'must be a JSON object');
  if (!isObject(json.model) || typeof json.model.type !== 'string') {
    throw new TokenizerError(jsonName, `must be an object with a string "type" (BPE, Unigram, WordPiece), got ${describe(json.model)}`, 'model');
  }
  const config = files.tokenizerConfig;
  if (!isObject(config)) throw new TokenizerError(configName, 'must be a JSON object');
  const map = files.specialTokensMap === undefined ? {} : files.specialTokensMap;
  if (!isObject(map)) throw new TokenizerError(mapName, 'must be a JSON object');

  // Special tokens: strings or AddedToken objects {content, ...}; tokenizer_config.json first, then special_tokens_map.json.
  const special: TemplateSpecialTokens = {};
  const specialFrom: Partial<Record<SpecialTokenKey, string>> = {};
  for (const key of SPECIAL_TOKEN_KEYS) {
    for (const [source, name] of [
      [config, configName],
      [map, mapName],
    ] as const) {
      const token = specialTokenContent(source[key], name, key);
      if (token !== undefined) {
        special[key] = token;
        specialFrom[key] = name;
        break;
      }
    }
  }

  const hfConfig = { ...config, ...special };
  let inner: HfTokenizer;
  try {
    inner = new HfTokenizer(json, hfConfig);
  } catch (err) {
    throw new TokenizerError(jsonName, `cannot build the tokenizer: ${(err as Error).message}`);
  }

  const ids: Partial<Record<SpecialTokenKey, number>> = {};
  for (const key of SPECIAL_TOKEN_KEYS) {
    const token = special[key];
    if (token === undefined) continue;
    const id = inner.token_to_id(token);
    if (id === undefined) throw new TokenizerError(specialFrom[key] as string, `${JSON.stringify(token)} is not a token of ${jsonName}`, key);
    ids[key] = id;
  }
  if (ids.eos_token === undefined) throw new TokenizerError(configName, `missing (and not in ${mapName}): the tokenizer needs an end-of-sequence token`, 'eos_token');

  // Any special added token can end a turn (<|im_end|>, <|eot_id|>, <end_of_turn>, ...), and so can the EOS.
  const endOfTurnTokens = [...specialAddedTokens(json), ...(special.eos_token === undefined ? [] : [special.eos_token])];
  let chatTemplate: ChatTemplate | undefined;
  const rawTemplate = config.chat_template;
  if (rawTemplate !== undefined && rawTemplate !== null) {
    chatTemplate = new ChatTemplate(selectTemplate(rawTemplate, configName), special, `${configName} "chat_template"`, endOfTurnTokens);
  } else if (files.chatTemplateJinja !== undefined) {
    chatTemplate = new ChatTemplate(files.chatTemplateJinja, special, join(dir, 'chat_template.jinja'), endOfTurnTokens);
  }

  let maxId = -1;
  for (const id of inner.get_vocab(true).values()) if (id > maxId) maxId = id;

  return new LoadedTokenizer(inner, chatTemplate, {
    eos: ids.eos_token,
    pad: ids.pad_token ?? ids.eos_token,
    bos: ids.bos_token ?? null,
    vocabSize: maxId + 1,
    configName,
  });
}

class LoadedTokenizer implements Tokenizer {
  readonly eosTokenId: number;
  readonly padTokenId: number;
  readonly bosTokenId: number | null;
  readonly vocabSize: number;
  private readonly configName: string;

  constructor(
    private readonly inner: HfTokenizer,
    private readonly chatTemplate: ChatTemplate | undefined,
    info: { eos: number; pad: number; bos: number | null; vocabSize: number; configName: string },
  ) {
    this.eosTokenId = info.eos;
    this.padTokenId = info.pad;
    this.bosTokenId = info.bos;
    this.vocabSize = info.vocabSize;
    this.configName = info.configName;
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    if (typeof text !== 'string') throw new TokenizerError('<input>', `must be a string, got ${typeof text}`, 'text');
    return this.inner.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new TokenizerError('<input>', `${id} is not a token id (expected an integer in [0, ${this.vocabSize}))`, `ids[${i}]`);
      }
    });
    return this.inner.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  applyChatTemplate(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean } = {}): string {
    return this.template().render(messages, options.addGenerationPrompt ?? false);
  }

  /**
   * The conversation is tokenized piece by piece, cutting at the assistant
   * spans, so every token is wholly inside or outside a span. This is the
   * sequence the model sees at inference (the prompt is encoded, then the
   * reply is generated after it); where spans border special tokens or a
   * pre-tokenizer split, as in ChatML and Llama-3, it is identical to
   * encoding the whole rendered text.
   */
  encodeChat(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean } = {}): EncodedChat {
    const { text, assistantSpans } = this.template().renderWithAssistantSpans(messages, options.addGenerationPrompt ?? false);
    const ids: number[] = [];
    const assistantMask: number[] = [];
    const push = (from: number, to: number, mask: number) => {
      if (to <= from) return;
      for (const id of this.inner.encode(text.slice(from, to), { add_special_tokens: false }).ids) {
        ids.push(id);
        assistantMask.push(mask);
      }
    };
    let cursor = 0;
    for (const [start, end] of assistantSpans) {
      push(cursor, start, 0);
      push(start, end, 1);
      cursor = end;
    }
    push(cursor, text.length, 0);
    return { ids, assistantMask };
  }

  encodeChatIds(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean } = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, options), { addSpecialTokens: false });
  }

  tokenToId(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.inner.id_to_token(id);
  }

  private template(): ChatTemplate {
    if (this.chatTemplate === undefined) {
      throw new TokenizerError(this.configName, 'no chat template (and no chat_template.jinja beside it): this tokenizer cannot format conversations', 'chat_template');
    }
    return this.chatTemplate;
  }
}

/** The contents of tokenizer.json's added tokens marked `"special": true`. */
function specialAddedTokens(json: Record<string, unknown>): string[] {
  if (!Array.isArray(json.added_tokens)) return [];
  return json.added_tokens.filter((t): t is { content: string } => isObject(t) && t.special === true && typeof t.content === 'string').map((t) => t.content);
}

/** `chat_template` is a string, or a list of {name, template} of which "default" is used. */
function selectTemplate(raw: unknown, configName: string): string {
  if (typeof raw === 'string') {
    if (raw.trim() === '') throw new TokenizerError(configName, 'is an empty string', 'chat_template');
    return raw;
  }
  if (Array.isArray(raw)) {
    for (const [i, entry] of raw.entries()) {
      if (!isObject(entry) || typeof entry.name !== 'string' || typeof entry.template !== 'string') {
        throw new TokenizerError(configName, `entry ${i} must be {"name": string, "template": string}, got ${describe(entry)}`, 'chat_template');
      }
    }
    const chosen = (raw as { name: string; template: string }[]).find((e) => e.name === 'default');
    if (chosen === undefined) {
      throw new TokenizerError(configName, `has named templates ${raw.map((e) => JSON.stringify((e as { name: string }).name)).join(', ')} but none named "default"`, 'chat_template');
    }
    return chosen.template;
  }
  throw new TokenizerError(configName, `must be a string or a list of {name, template}, got ${describe(raw)}`, 'chat_template');
}

function specialTokenContent(value: unknown, file: string, key: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (isObject(value) && typeof value.content === 'string') return value.content;
  throw new TokenizerError(file, `must be a string or an AddedToken object {"content": string, ...}, got ${describe(value)}`, key);
}

async function readJson(path: string, required: true): Promise<unknown>;
async function readJson(path: string, required: false): Promise<unknown | undefined>;
async function readJson(path: string, required: boolean): Promise<unknown | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      if (!required) return undefined;
      throw new TokenizerError(path, 'file not found');
    }
    throw new TokenizerError(path, `cannot read: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TokenizerError(path, `invalid JSON: ${(err as Error).message}`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
