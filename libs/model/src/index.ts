/** @posttrain/model */
export {};
