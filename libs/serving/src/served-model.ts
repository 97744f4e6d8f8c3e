import { readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendLogger } from '@posttrain/backend';
import { loadModel, type LlamaModel } from '@posttrain/model';
import { loadTokenizer, type Tokenizer } from '@posttrain/tokenizer';

/**
 * A model directory loaded for serving: the model, its tokenizer (when the
 * directory has tokenizer.json) and what GetInfo reports about it.
 */
export interface ServedModel {
  model: LlamaModel;
  tokenizer: Tokenizer | null;
  /** Absolute path of the directory. */
  dir: string;
  /** config.json's `_name_or_path`, else the directory name. */
  modelId: string;
  /** config.json verbatim. */
  configJson: string;
}

/** Loads a Hugging Face model directory; the tfjs backend must be initialised already (initBackend). */
export async function loadServedModel(dir: string): Promise<ServedModel> {
  const abs = resolve(dir);
  const configJson = await readFile(join(abs, 'config.json'), 'utf8').catch((e: Error) => {
    throw new Error(`${join(abs, 'config.json')}: cannot read (${e.message})`);
  });
  const model = await loadModel(abs);
  let tokenizer: Tokenizer | null = null;
  try {
    const hasTokenizer = await stat(join(abs, 'tokenizer.json')).then(
      () => true,
      () => false,
    );
    if (hasTokenizer) tokenizer = await loadTokenizer(abs);
  } catch (e) {
    model.dispose();
    throw e;
  }
  let modelId = basename(abs);
  try {
    const raw = JSON.parse(configJson) as { _name_or_path?: unknown };
    if (typeof raw._name_or_path === 'string' && raw._name_or_path !== '') modelId = raw._name_or_path;
  } catch {
    // loadModel has already validated config.json; unreachable in practice
  }
  return { model, tokenizer, dir: abs, modelId, configJson };
}

export interface ServiceModelOptions {
  /** Takes initBackend's "backend selected" record and the `<label> loaded` line. */
  log: BackendLogger;
  /** What the log line calls the model: `model` (the default), `reward model`. */
  label?: string;
  /** Throws when the model cannot serve this service (the reference needs an LM head); runs before the log line. */
  check?: (served: ServedModel) => void;
}

/**
 * A serving process's model at start: initialises the tfjs backend
 * (initBackend), loads the directory (loadServedModel), checks it and logs
 * `<label> loaded` with its id, directory and parameter count.
 */
export async function loadServiceModel(dir: string, o: ServiceModelOptions): Promise<ServedModel> {
  await initBackend({ logger: o.log });
  const served = await loadServedModel(dir);
  o.check?.(served);
  o.log.info(`${o.label ?? 'model'} loaded`, { model: served.modelId, dir: served.dir, parameters: served.model.parameterCount() });
  return served;
}

/** What GetInfo reports about a served model (the fields of the wire's ModelDescription). */
export type ServedModelDescription = ReturnType<typeof describeServedModel>;

/** The description of a served model that GetInfo reports. */
export function describeServedModel(served: ServedModel) {
  const c = served.model.config;
  return {
    modelId: served.modelId,
    modelPath: served.dir,
    configJson: served.configJson,
    backend: tf.getBackend(),
    vocabSize: c.vocabSize,
    maxSequenceLength: c.maxPositionEmbeddings,
    numParameters: served.model.parameterCount(),
  };
}
