/** @posttrain/telemetry */
export {};
