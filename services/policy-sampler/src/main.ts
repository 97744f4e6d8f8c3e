export const name = "policy-sampler";
