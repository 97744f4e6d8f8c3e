/** @posttrain/backend */
export {};
