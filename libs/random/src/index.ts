/** @posttrain/random */
export {};
