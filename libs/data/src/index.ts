/** @posttrain/data */
export {};
