/** @posttrain/tokenizer */
export {};
