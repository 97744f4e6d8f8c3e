import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { RewardScorerService, ScoreItem, type ChatMessage, type ItemScore } from '@posttrain/proto';
import { parseRewardSpec, RewardValidationError } from '@posttrain/rewards';
import { defineConfig, describeConfig, parseConfig } from '@posttrain/flags';
import { createClient } from '@posttrain/rpc';
import { UsageError, type Command } from '../command';

const options = defineConfig({
  addr: { kind: 'string', flag: 'addr', description: 'HOST:PORT of a running reward service (required)' },
  rules: { kind: 'string', flag: 'rules', description: 'reward components, a YAML or JSON list of {name, weight, rule, params} (required)' },
  data: { kind: 'string', flag: 'data', description: 'JSONL of {"prompt", "completion", "ground_truth"|"answer"|"solution"?, "id"?} (required)' },
  batch: { kind: 'int', flag: 'batch', description: 'items per Score request', default: 256, min: 1 },
  json: { kind: 'bool', flag: 'json', description: 'print one JSON object per item', default: false },
});

function readText(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`${flag} ${path}: cannot read (${(e as Error).message})`);
  }
}

/** The reward components of a rules file; errors name the file and the entry's path. */
export function readRulesFile(path: string) {
  const text = readText(path, '--rules');
  let raw: unknown;
  try {
    raw = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new UsageError(`--rules ${path}: not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'} (${(e as Error).message})`);
  }
  try {
    return parseRewardSpec(raw);
  } catch (e) {
    if (e instanceof RewardValidationError) throw new UsageError(`--rules ${path}: ${e.message}`);
    throw e;
  }
}

function isMessages(v: unknown): v is ChatMessage[] {
  return Array.isArray(v) && v.every((m) => typeof m === 'object' && m !== null && typeof (m as ChatMessage).role === 'string' && typeof (m as ChatMessage).content === 'string');
}

/**
 * Score items from a JSONL file in the TRL prompt-completion shapes: `prompt`
 * a string or a list of chat messages, `completion` a string or a list of
 * messages (their contents joined), an optional ground truth under
 * `ground_truth`, `answer` or `solution`, an optional `id` (default: the line
 * number). Errors name the file, the line and the field.
 */
export function readScoreItems(path: string): ScoreItem[] {
  const items: ScoreItem[] = [];
  readText(path, '--data').split('\n').forEach((line, i) => {
    const where = `${path}:${i + 1}`;
    if (line.trim() === '') return;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      throw new UsageError(`${where}: expected one JSON object per line (${(e as Error).message})`);
    }
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) throw new UsageError(`${where}: expected a JSON object, got ${JSON.stringify(rec).slice(0, 40)}`);
    const r = rec as Record<string, unknown>;
    const { prompt, completion } = r;
    if (typeof prompt !== 'string' && !isMessages(prompt)) throw new UsageError(`${where}: field "prompt": expected a string or a list of {role, content} messages, got ${JSON.stringify(prompt)?.slice(0, 40) ?? 'nothing'}`);
    if (typeof completion !== 'string' && !isMessages(completion)) throw new UsageError(`${where}: field "completion": expected a string or a list of {role, content} messages, got ${JSON.stringify(completion)?.slice(0, 40) ?? 'nothing'}`);
    const truthKey = ['ground_truth', 'answer', 'solution'].find((k) => r[k] !== undefined);
    const truth = truthKey === undefined ? undefined : r[truthKey];
    if (truth !== undefined && typeof truth !== 'string' && typeof truth !== 'number') throw new UsageError(`${where}: field "${truthKey}": expected a string or a number, got ${JSON.stringify(truth).slice(0, 40)}`);
    if (r.id !== undefined && typeof r.id !== 'string' && typeof r.id !== 'number') throw new UsageError(`${where}: field "id": expected a string or a number`);
    items.push(
      ScoreItem.fromPartial({
        id: r.id === undefined ? `line ${i + 1}` : String(r.id),
        prompt: typeof prompt === 'string' ? prompt : '',
        promptMessages: typeof prompt === 'string' ? [] : prompt,
        completion: typeof completion === 'string' ? completion : completion.map((m) => m.content).join(''),
        groundTruth: truth === undefined ? undefined : String(truth),
      }),
    );
  });
  if (items.length === 0) throw new UsageError(`--data ${path}: no records`);
  return items;
}

function format(s: ItemScore, json: boolean): string {
  if (json) return JSON.stringify({ id: s.id, reward: s.reward, components: Object.fromEntries(s.components.map((c) => [c.name, { value: c.value, weighted: c.weighted }])) }) + '\n';
  return `${s.id}\treward ${s.reward.toFixed(4)}\t${s.components.map((c) => `${c.name}=${c.value.toFixed(4)}`).join(' ')}\n`;
}

/** `posttrain score`: per-item rewards of a JSONL file from a running reward service. */
export const scoreCommand: Command = {
  name: 'score',
  summary: 'score (prompt, completion) pairs from a JSONL file with a running reward service',
  help: () =>
    `usage: posttrain score --addr HOST:PORT --rules FILE.yaml|json --data FILE.jsonl [options]\n\nSends the items to the reward service in batches, with the reward components of --rules (the same\nlist a run config's rewards: takes), and prints each item's total reward and its components, then\nthe mean.\n\nOptions:\n${describeConfig(options)}\n`,
  run: async (argv, io) => {
    const o = parseConfig(options, { argv });
    for (const k of ['addr', 'rules', 'data'] as const) if (!o[k]) throw new UsageError(`missing --${k}`);
    const components = readRulesFile(o.rules!);
    const items = readScoreItems(o.data!);
    const client = createClient(RewardScorerService, o.addr!);
    let sum = 0;
    try {
      for (let s = 0; s < items.length; s += o.batch) {
        const res = await client.unary('score', { items: items.slice(s, s + o.batch), components });
        for (const score of res.scores) {
          sum += score.reward;
          io.stdout.write(format(score, o.json));
        }
      }
    } finally {
      client.close();
    }
    if (!o.json) io.stdout.write(`mean reward ${(sum / items.length).toFixed(4)} over ${items.length} items\n`);
    return 0;
  },
};
