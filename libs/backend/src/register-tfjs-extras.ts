/**
 * The Node entry of @tensorflow/tfjs-core (dist/tf-core.node.js) registers no
 * gradients and no chained ops (`x.square().sum()`); the umbrella package
 * @tensorflow/tfjs does that, and posttrain does not depend on it. Without
 * this, `tf.grad` fails with "gradient function not found for Sum". These are
 * the package's own registration modules (ES modules, loaded through tsx);
 * they share the engine and registries with the Node bundle through tfjs's
 * global namespace, so registering twice (when tfjs-node brings @tensorflow/tfjs)
 * only replaces equal entries.
 */
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
