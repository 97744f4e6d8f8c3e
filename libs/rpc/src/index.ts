/** @posttrain/rpc */
export {};
