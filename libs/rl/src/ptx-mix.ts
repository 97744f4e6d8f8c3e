/**
 * PPO-ptx (Ouyang et al. 2022, section 3.5; OpenRLHF's `ptx_coef`): every
 * policy update also minimises the next-token loss on a batch of the
 * pretraining mix, weighted by ptx_coef,
 *
 *   loss = PPO's policy loss + ptx_coef * NLL(ptx batch),
 *
 * so that RL on a reward that does not see a skill (here: the arithmetic
 * under a style reward) does not wear it away. The batches come from a
 * shuffled, resumable loader over the ptx file ({"text"} documents are
 * trained on every token, SFT data as SFT trains on it); its position is
 * part of the run's checkpoint.
 */
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import type { DataPosition, SftBatch, SftExample, TokenizerLike } from '@posttrain/data';
import { DataLoader, IndexedDataFile, createSftLoader, parseDataConfig } from '@posttrain/data';
import type { LlamaModel } from '@posttrain/model';
import { nextTokenBatchLoss } from '@posttrain/training';
import type { PtxConfig } from './rl-run-config';
import { RlConfigError } from './rl-run-config';

export class PtxMix {
  private constructor(
    readonly coefficient: number,
    private readonly file: IndexedDataFile,
    private readonly loader: DataLoader<SftExample, SftBatch>,
  ) {}

  /** Opens the ptx file; `rows` per batch, shuffled from `seed`, resumed at `position`. */
  static async open(config: PtxConfig, rows: number, tokenizer: TokenizerLike, seed: number, position?: DataPosition): Promise<PtxMix> {
    if (!existsSync(config.datasetPath)) throw new RlConfigError('ppo.ptx_dataset', `file ${JSON.stringify(config.datasetPath)} does not exist`);
    const data = parseDataConfig({ seed, shuffle: true, dropLast: false, batchSize: rows, maxLength: config.maxLength, truncation: 'truncate' }, 'ppo.ptx_dataset');
    const file = await IndexedDataFile.open(config.datasetPath, data);
    if (file.length === 0) {
      await file.close();
      throw new RlConfigError('ppo.ptx_dataset', `file ${JSON.stringify(config.datasetPath)} has no records`);
    }
    return new PtxMix(config.coefficient, file, createSftLoader(file, tokenizer, data, position));
  }

  /** The next batch of the mix (the loader runs epoch after epoch). */
  next(): Promise<SftBatch> {
    return this.loader.next();
  }

  /** ptx_coef x the batch's mean next-token loss (differentiable), and its metrics. */
  loss(model: LlamaModel, batch: SftBatch): { loss: tf.Scalar; metrics: Record<string, number> } {
    const out = nextTokenBatchLoss(model, batch);
    const metrics = { 'loss/ptx': out.metrics['loss/sft'], 'ptx/mean_token_accuracy': out.metrics['sft/mean_token_accuracy'] };
    return { loss: tf.mul(this.coefficient, out.loss) as tf.Scalar, metrics };
  }

  /** Where the next batch starts (saved with a checkpoint). */
  position(): DataPosition {
    return this.loader.position();
  }

  close(): Promise<void> {
    return this.file.close();
  }
}
