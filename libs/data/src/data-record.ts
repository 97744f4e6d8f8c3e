import type { ChatMessage } from './tokenizer-like';

/** `{"text": "..."}` */
export interface TextRecord {
  format: 'language-modeling';
  style: 'standard';
  text: string;
}

/** `{"messages": [{"role": "user", "content": "..."}, ...]}` */
export interface MessagesRecord {
  format: 'language-modeling';
  style: 'conversational';
  messages: ChatMessage[];
}

/** `{"prompt": "...", "completion": "..."}` */
export interface PromptCompletionRecord {
  format: 'prompt-completion';
  style: 'standard';
  prompt: string;
  completion: string;
}

/** `{"prompt": [messages], "completion": [messages]}` */
export interface ChatPromptCompletionRecord {
  format: 'prompt-completion';
  style: 'conversational';
  prompt: ChatMessage[];
  completion: ChatMessage[];
}

/**
 * `{"prompt", "chosen", "rejected"}`, or `{"chosen", "rejected"}` with the
 * prompt implicit (format 'implicit-preference'): then `prompt` holds the
 * recovered shared prefix and `chosen` / `rejected` what follows it.
 */
export interface PreferenceRecord {
  format: 'preference' | 'implicit-preference';
  style: 'standard';
  prompt: string;
  chosen: string;
  rejected: string;
}

/** Conversational form of {@link PreferenceRecord}. */
export interface ChatPreferenceRecord {
  format: 'preference' | 'implicit-preference';
  style: 'conversational';
  prompt: ChatMessage[];
  chosen: ChatMessage[];
  rejected: ChatMessage[];
}

/** `{"prompt": "...", "answer": "..."}`: a prompt for RL, with the ground truth verifiable rewards use (null when absent). */
export interface PromptOnlyRecord {
  format: 'prompt-only';
  style: 'standard';
  prompt: string;
  groundTruth: string | null;
}

/** Conversational form of {@link PromptOnlyRecord}. */
export interface ChatPromptOnlyRecord {
  format: 'prompt-only';
  style: 'conversational';
  prompt: ChatMessage[];
  groundTruth: string | null;
}

export type DataRecord =
  | TextRecord
  | MessagesRecord
  | PromptCompletionRecord
  | ChatPromptCompletionRecord
  | PreferenceRecord
  | ChatPreferenceRecord
  | PromptOnlyRecord
  | ChatPromptOnlyRecord;

/** A validated record with the line it came from. */
export interface DataLine<R extends DataRecord = DataRecord> {
  /** 1-based line number in the file. */
  line: number;
  record: R;
}
