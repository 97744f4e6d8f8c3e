/** @posttrain/proto */
export {};
