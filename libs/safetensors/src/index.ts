/** @posttrain/safetensors */
export {};
