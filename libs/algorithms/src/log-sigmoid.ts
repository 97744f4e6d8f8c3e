import * as tf from '@tensorflow/tfjs-core';

/**
 * log sigma(x), stable for any x.
 * log sigma(x) = -log(1 + e^{-x}). For x >= 0 that is -log1p(e^{-x}); for x < 0,
 * e^{-x} overflows, so factor it out: -log(e^{-x}(1 + e^{x})) = x - log1p(e^{x}).
 * Both cases are min(x, 0) - log1p(e^{-|x|}): the exponent is never positive.
 * The gradient at x = 0 comes out right too: tf picks d min(x,0)/dx = 1 and
 * d|x|/dx = -1 there, giving 1 - 0.5 = 0.5 = sigma(0).
 */
export function logSigmoid(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.sub(tf.minimum(x, 0), tf.log1p(tf.exp(tf.neg(tf.abs(x))))));
}
