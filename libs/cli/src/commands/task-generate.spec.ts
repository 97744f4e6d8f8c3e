import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from '../command';
import { captureIO } from '../test-io';
import { taskGenerateCommand } from './task-generate';

const SMALL = ['--sizes', '10,40', '--corpus', '50', '--preference', '20', '--prompts', '20', '--eval', '15'];

/** Runs the command as runCli does: usage mistakes become exit code 2 with the message on stderr. */
async function run(command: Command, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIO();
  let code: number;
  try {
    code = await command.run(argv, io);
  } catch (err) {
    const name = (err as Error).name;
    io.stderr.write(`${(err as Error).message}\n`);
    code = name === 'UsageError' || name === 'ConfigError' ? 2 : 1;
  }
  return { code, out: io.out(), err: io.err() };
}

describe('posttrain task generate', () => {
  test('writes every file and a manifest; the same seed writes the same bytes', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'task-cli-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const first = await run(taskGenerateCommand, ['--out', join(dir, 'a'), '--seed', '5', ...SMALL]);
    assert.equal(first.code, 0, first.err);
    assert.match(first.out, /sft-40\.jsonl\s+train\s+40 records/);
    assert.match(first.out, /prompts-eval\.jsonl\s+eval\s+15 records/);
    const manifest = JSON.parse(await readFile(join(dir, 'a', 'manifest.json'), 'utf8'));
    assert.equal(manifest.seed, 5);
    assert.deepEqual(manifest.options.sftSizes, [10, 40]);
    assert.equal(manifest.files.length, 12); // corpus, sft-10, sft-40, style and correctness pairs, prompts, their five eval files, prose-eval
    const second = await run(taskGenerateCommand, ['--out', join(dir, 'b'), '--seed', '5', ...SMALL, '--json']);
    assert.equal(second.code, 0, second.err);
    assert.deepEqual(JSON.parse(second.out), manifest);
    for (const f of manifest.files as { name: string }[]) {
      assert.ok((await readFile(join(dir, 'a', f.name))).equals(await readFile(join(dir, 'b', f.name))), f.name);
    }
  });

  test('usage errors exit 2 and name the flag', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'task-cli-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'file.txt');
    await writeFile(file, 'x');
    const cases: [string[], RegExp][] = [
      [[], /missing required option --out/],
      [['--out', dir, '--sizes', '300,100'], /--sizes\[1\]: got 100, expected a size larger than sftSizes\[0\] = 300/],
      [['--out', dir, '--sizes', '10,ten'], /--sizes: entry 2 is "ten", expected a positive integer/],
      [['--out', dir, '--ops', 'add,div'], /--ops\[1\]: got "div", expected one of add, sub, mul/],
      [['--out', dir, '--eval', '0'], /--eval: got 0, expected an integer in \[1, 1000000\]/],
      [['--out', file], /--out: .*file\.txt exists and is not a folder/],
      [['--out', dir, '--sead', '1'], /unknown option --sead/],
    ];
    for (const [argv, re] of cases) {
      const r = await run(taskGenerateCommand, argv);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
      assert.match(r.err, re);
    }
  });
});
