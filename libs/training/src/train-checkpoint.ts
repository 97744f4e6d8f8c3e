/**
 * Training checkpoints: <runDir>/checkpoints/step-N/ holding
 *   model/                     a model in HF layout (full fine-tuning), or
 *   adapter/                   the LoRA adapter (PEFT layout, with its modules_to_save heads such as a
 *                              reward model's score.weight) when training LoRA,
 *   value_model/               PPO's critic (every stage names its models' directories)
 *   optimizer.safetensors      AdamW moments (exp_avg/<name>, exp_avg_sq/<name>); value_optimizer.safetensors for PPO's critic
 *   trainer_state.json         step, optimizer t, scheduler, RNG state, data position, skip counters, and `extra`
 *                              (what a stage adds: PPO's KL controller state, the sampler weights version, ...)
 * A checkpoint is filled in a temp directory and renamed into place, so a
 * crash never leaves a half-written step-N; only directories with a
 * trainer_state.json count.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DataPosition } from '@posttrain/data';
import { validateDataPosition } from '@posttrain/data';
import type { LlamaModel } from '@posttrain/model';
import { saveLoraAdapter, saveModel } from '@posttrain/model';
import type { RngState } from '@posttrain/random';
import { validateRngState } from '@posttrain/random';
import { readSafetensorsFile, serializeSafetensors } from '@posttrain/safetensors';
import type { OptimizerTensors } from './adamw-optimizer';
import type { Stage } from './run-config-types';

/** Every stage a checkpoint can belong to: the offline stages and the online RL ones. */
export type CheckpointStage = Stage | 'ppo' | 'grpo';

export interface TrainerState {
  version: 1;
  stage: CheckpointStage;
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
  /** Models by directory name ('model', 'value_model'); one with LoRA adapters is saved as its adapter instead. */
  models: { dir: string; model: LlamaModel }[];
  /** Optimizer moments by file name ('optimizer.safetensors', 'value_optimizer.safetensors'). */
  optimizers: { file: string; tensors: OptimizerTensors }[];
  state: TrainerState;
}

export function checkpointsDir(runDir: string): string {
  return join(runDir, 'checkpoints');
}

/** Writes <runDir>/checkpoints/step-<state.step> atomically; returns its path. */
export async function saveCheckpoint(runDir: string, contents: CheckpointContents): Promise<string> {
  const root = checkpointsDir(runDir);
  await mkdir(root, { recursive: true });
  const final = join(root, `step-${contents.state.step}`);
  const tmp = join(root, `.step-${contents.state.step}.tmp-${process.pid}-${Date.now()}`);
  await mkdir(tmp);
  try {
    for (const { dir, model } of contents.models) {
      if (model.lora) await saveLoraAdapter(model, join(tmp, dir));
      else await saveModel(model, join(tmp, dir));
    }
    for (const { file, tensors } of contents.optimizers) await writeFile(join(tmp, file), serializeSafetensors(tensors, { format: 'posttrain-adamw' }));
    await writeFile(join(tmp, 'trainer_state.json'), JSON.stringify(contents.state, null, 2) + '\n');
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

/** The optimizer moments of a checkpoint (optimizer.safetensors unless another file is named). */
export async function readOptimizerTensors(checkpointDir: string, file = 'optimizer.safetensors'): Promise<OptimizerTensors> {
  const { tensors } = await readSafetensorsFile(join(checkpointDir, file));
  const out: OptimizerTensors = new Map();
  for (const [name, t] of tensors) out.set(name, { shape: t.shape, data: t.data });
  return out;
}
