/** @posttrain/algorithms */
export {};
