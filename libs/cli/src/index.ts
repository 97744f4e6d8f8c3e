/** @posttrain/cli */
export {};
