/**
 * Training checkpoints: <runDir>/checkpoints/step-N/ holding
 *   model/                     the model in HF layout (full fine-tuning), or
 *   adapter/                   the LoRA adapter (PEFT layout) when training LoRA,
 *   trainable.safetensors      LoRA runs only: trainable base weights outside the adapter (a reward model's score.weight)
 *   optimizer.safetensors      AdamW moments (exp_avg/<name>, exp_avg_sq/<name>)
 *   trainer_state.json         step, optimizer t, scheduler, RNG state, data position, skip counters, and `extra`
 *                              (a record later stages extend: PPO's KL controller state, ...)
 * A checkpoint is filled in a temp directory and renamed into place, so a
 * crash never leaves a half-written step-N; only directories with a
 * trainer_state.json count.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { DataPosition } from '@posttrain/data';
import { validateDataPosition } from '@posttrain/data';
import type { LlamaModel } from '@posttrain/model';
import { saveLoraAdapter, saveModel } from '@posttrain/model';
import type { RngState } from '@posttrain/random';
import { validateRngState } from '@posttrain/random';
import { readSafetensorsFile, serializeSafetensors } from '@posttrain/safetensors';
import type { OptimizerTensors } from './adamw-optimizer';
import type { Stage } from './run-config-types';

export interface TrainerState {
  version: 1;
  stage: Stage;
  /** Optimizer steps completed (including skipped ones). */
  step: number;
  totalSteps: number;
  /** Adam's update count (skipped steps do not update). */
  optimizerT: number;
  scheduler: { type: string; baseLr: number; warmupSteps: number; totalSteps: number };
  rng: RngState;
  dataPosition: DataPosition;
  consecutiveSkips: number;
  skippedSteps: number;
  /** Stage-specific state (e.g. a KL controller); plain JSON. */
  extra: Record<string, unknown>;
}

export interface CheckpointContents {
  model: LlamaModel;
  /** Non-adapter parameters that train alongside LoRA adapters, by name. */
  loraExtraTrainables: { name: string; variable: tf.Variable }[];
  optimizer: OptimizerTensors;
  state: TrainerState;
}

export function checkpointsDir(runDir: string): string {
  return join(runDir, 'checkpoints');
}

/** Writes <runDir>/checkpoints/step-<state.step> atomically; returns its path. */
export async function saveCheckpoint(runDir: string, c: CheckpointContents): Promise<string> {
  const root = checkpointsDir(runDir);
  await mkdir(root, { recursive: true });
  const final = join(root, `step-${c.state.step}`);
  const tmp = join(root, `.step-${c.state.step}.tmp-${process.pid}-${Date.now()}`);
  await mkdir(tmp);
  try {
    if (c.model.lora) {
      await saveLoraAdapter(c.model, join(tmp, 'adapter'));
      const extra = new Map<string, { shape: number[]; data: Float32Array }>();
      for (const { name, variable } of c.loraExtraTrainables) extra.set(name, { shape: variable.shape.slice(), data: (variable.dataSync() as Float32Array).slice() });
      await writeFile(join(tmp, 'trainable.safetensors'), serializeSafetensors(extra, { format: 'posttrain-internal' }));
    } else {
      await saveModel(c.model, join(tmp, 'model'));
    }
    await writeFile(join(tmp, 'optimizer.safetensors'), serializeSafetensors(c.optimizer, { format: 'posttrain-adamw' }));
    await writeFile(join(tmp, 'trainer_state.json'), JSON.stringify(c.state, null, 2) + '\n');
    if (existsSync(final)) await rm(final, { recursive: true, force: true });
    await rename(tmp, final);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  return final;
}

/** Complete checkpoints of a run, oldest first. */
export async function listCheckpoints(runDir: string): Promise<{ step: number; path: string }[]> {
  const root = checkpointsDir(runDir);
  if (!existsSync(root)) return [];
  const out: { step: number; path: string }[] = [];
  for (const name of await readdir(root)) {
    const m = /^step-(\d+)$/.exec(name);
    if (m && existsSync(join(root, name, 'trainer_state.json'))) out.push({ step: Number(m[1]), path: join(root, name) });
  }
  return out.sort((a, b) => a.step - b.step);
}

/** Removes the oldest checkpoints beyond `limit`. */
export async function pruneCheckpoints(runDir: string, limit: number | null): Promise<void> {
  if (limit === null) return;
  const all = await listCheckpoints(runDir);
  for (const c of all.slice(0, Math.max(0, all.length - limit))) await rm(c.path, { recursive: true, force: true });
}

function requireNumber(obj: Record<string, unknown>, key: string, source: string, integer = true): number {
  const v = obj[key];
  if (typeof v !== 'number' || (integer && !Number.isInteger(v)) || v < 0) throw new Error(`${source}: "${key}" is ${JSON.stringify(v)}, expected a non-negative ${integer ? 'integer' : 'number'}`);
  return v;
}

/** Reads and validates trainer_state.json of a checkpoint directory. */
export async function readTrainerState(checkpointDir: string): Promise<TrainerState> {
  const source = join(checkpointDir, 'trainer_state.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(source, 'utf8'));
  } catch (e) {
    throw new Error(`${source}: cannot read trainer state (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${source}: expected a JSON object`);
  const r = raw as Record<string, unknown>;
  if (r.version !== 1) throw new Error(`${source}: "version" is ${JSON.stringify(r.version)}, expected 1`);
  for (const k of ['step', 'totalSteps', 'optimizerT', 'consecutiveSkips', 'skippedSteps']) requireNumber(r, k, source);
  const sched = r.scheduler as Record<string, unknown> | undefined;
  if (typeof sched !== 'object' || sched === null) throw new Error(`${source}: "scheduler" is ${JSON.stringify(sched)}, expected an object`);
  if (typeof r.extra !== 'object' || r.extra === null || Array.isArray(r.extra)) throw new Error(`${source}: "extra" is ${JSON.stringify(r.extra)}, expected an object`);
  return {
    ...(r as unknown as TrainerState),
    rng: validateRngState(r.rng, `${source} rng`),
    dataPosition: validateDataPosition(r.dataPosition, `${source} dataPosition`),
  };
}

/** The optimizer moments of a checkpoint. */
export async function readOptimizerTensors(checkpointDir: string): Promise<OptimizerTensors> {
  const { tensors } = await readSafetensorsFile(join(checkpointDir, 'optimizer.safetensors'));
  const out: OptimizerTensors = new Map();
  for (const [name, t] of tensors) out.set(name, { shape: t.shape, data: t.data });
  return out;
}

/** Restores the LoRA-run extra trainables (score.weight) of a checkpoint into the given variables. */
export async function restoreExtraTrainables(checkpointDir: string, vars: { name: string; variable: tf.Variable }[]): Promise<void> {
  const path = join(checkpointDir, 'trainable.safetensors');
  const { tensors } = await readSafetensorsFile(path);
  for (const { name, variable } of vars) {
    const t = tensors.get(name);
    if (!t) throw new Error(`${path}: tensor ${name} is missing`);
    if (t.shape.join(',') !== variable.shape.join(',')) throw new Error(`${path}: tensor ${name} has shape [${t.shape}], expected [${variable.shape}]`);
    variable.assign(tf.tensor(t.data, t.shape, 'float32'));
  }
}
