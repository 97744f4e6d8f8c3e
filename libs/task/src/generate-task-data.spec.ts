import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateTaskData, serializeRecords, type PreferenceRecord, type PromptRecord, type SftRecord, type TaskData, type TaskFile, type TaskRecord } from './generate-task-data';
import { parseTaskOptions } from './task-options';
import { expressionIn, keyOf, sentencesOf, splitReply, valueOf } from './test-reference';

const SMALL = { seed: 3, sftSizes: [20, 50, 120], corpusSize: 400, preferenceSize: 100, promptsSize: 100, evalSize: 60 };

function bytesOf(data: TaskData): string[] {
  return data.files.map((f) => `${f.name}\n${serializeRecords(f.records)}`);
}

/** The user's message of a chat record (prompt or messages), a prose prompt, or the text of a corpus record. */
function questionOf(r: TaskRecord): string {
  if ('text' in r) return r.text;
  if ('messages' in r) return r.messages[0].content;
  return typeof r.prompt === 'string' ? r.prompt : r.prompt[0].content;
}

/** Every problem a record is about: one per question, one per sentence of a corpus document. */
function keysOf(file: TaskFile): string[] {
  return file.records.flatMap((r) =>
    ('text' in r ? sentencesOf(r.text) : [questionOf(r)]).flatMap((text) => {
      if (text.startsWith('Facts:')) return []; // one-digit column facts, not problems
      const e = expressionIn(text);
      assert.ok(e, `${file.name}: no problem found in ${JSON.stringify(text)}`);
      return [keyOf(e)];
    }),
  );
}

const defaults = generateTaskData({ seed: 0 });
const file = (data: TaskData, name: string): TaskFile => {
  const f = data.files.find((x) => x.name === name);
  assert.ok(f, `no file ${name}`);
  return f;
};

describe('generateTaskData', () => {
  test('same seed, same bytes; another seed, other bytes', () => {
    assert.deepEqual(bytesOf(generateTaskData(SMALL)), bytesOf(generateTaskData(SMALL)));
    const other = bytesOf(generateTaskData({ ...SMALL, seed: 4 }));
    bytesOf(generateTaskData(SMALL)).forEach((b, i) => assert.notEqual(b, other[i], `file ${i} did not change with the seed`));
  });

  test('files, counts and nesting at the default sizes', () => {
    assert.deepEqual(
      defaults.files.map((f) => [f.name, f.split, f.records.length]),
      [
        ['corpus.jsonl', 'train', 20000],
        ['corpus-eval.jsonl', 'eval', 300],
        ['sft-100.jsonl', 'train', 100],
        ['sft-300.jsonl', 'train', 300],
        ['sft-1000.jsonl', 'train', 1000],
        ['sft-3000.jsonl', 'train', 3000],
        ['sft-eval.jsonl', 'eval', 300],
        ['preference.jsonl', 'train', 2000],
        ['preference-eval.jsonl', 'eval', 300],
        ['preference-correct.jsonl', 'train', 2000],
        ['preference-correct-eval.jsonl', 'eval', 300],
        ['prompts.jsonl', 'train', 2000],
        ['prompts-eval.jsonl', 'eval', 300],
        ['prose-eval.jsonl', 'eval', 300],
      ],
    );
    // Each SFT size is a prefix of the next: the sweep adds data and keeps what the smaller run saw.
    const largest = file(defaults, 'sft-3000.jsonl').records;
    for (const n of [100, 300, 1000]) assert.deepEqual(file(defaults, `sft-${n}.jsonl`).records, largest.slice(0, n));
  });

  test('no held-out problem appears in any training file, and the SFT, preference and RL pools share none', () => {
    const evalKeys = new Set(keysOf(file(defaults, 'prompts-eval.jsonl')));
    assert.equal(evalKeys.size, 300);
    for (const name of ['sft-eval.jsonl', 'preference-eval.jsonl', 'preference-correct-eval.jsonl', 'corpus-eval.jsonl', 'prose-eval.jsonl']) {
      for (const k of keysOf(file(defaults, name))) assert.ok(evalKeys.has(k), `${name} poses ${k}, which is not a held-out problem`);
    }
    const pools: Record<string, Set<string>> = {};
    for (const f of defaults.files.filter((x) => x.split === 'train')) {
      const keys = keysOf(f);
      for (const k of keys) assert.ok(!evalKeys.has(k), `${f.name} contains held-out problem ${k}`);
      pools[f.name] = new Set(keys);
      if (f.kind !== 'corpus') assert.equal(pools[f.name].size, f.records.length, `${f.name} repeats a problem`);
    }
    assert.ok(pools['corpus.jsonl'].size > 10000, 'the corpus covers many problems');
    for (const [a, b] of [['sft-3000.jsonl', 'preference.jsonl'], ['sft-3000.jsonl', 'prompts.jsonl'], ['preference.jsonl', 'prompts.jsonl']]) {
      for (const k of pools[a]) assert.ok(!pools[b].has(k), `${a} and ${b} share ${k}`);
    }
  });

  test('every answer is right (recomputed from the question); correctness pairs reject a wrong answer, style pairs a right one', () => {
    let checked = 0;
    for (const f of defaults.files) {
      for (const r of f.records) {
        const e = expressionIn(questionOf(r));
        if ('messages' in r) {
          assert.equal(splitReply(r.messages[1].content)?.answer, valueOf(e!), JSON.stringify(r));
        } else if ('chosen' in r) {
          const chosen = splitReply(r.chosen[0].content);
          const rejected = splitReply(r.rejected[0].content);
          assert.equal(chosen?.answer, valueOf(e!), JSON.stringify(r));
          if ('preferredStyle' in r) {
            // Both right, the same steps; only the lead-in differs, and the chosen one has it.
            assert.equal(rejected?.answer, valueOf(e!), JSON.stringify(r));
            assert.deepEqual(rejected?.steps, chosen?.steps, JSON.stringify(r));
            assert.deepEqual([chosen?.friendly, rejected?.friendly], [true, false], JSON.stringify(r));
          } else {
            assert.ok(rejected && rejected.answer !== valueOf(e!), JSON.stringify(r));
            assert.equal(rejected.friendly, chosen?.friendly, `one style within a correctness pair: ${JSON.stringify(r)}`);
          }
        } else if ('answer' in r) {
          assert.equal(r.answer, String(valueOf(e!)), JSON.stringify(r));
        } else {
          for (const sentence of sentencesOf(r.text)) {
            if (sentence.startsWith('Facts:')) continue;
            // "..., so the sum is 632." / "... equals 632." / "... is 632."
            assert.equal(Number(/(\d+)\.$/.exec(sentence)?.[1]), valueOf(expressionIn(sentence)!), r.text);
          }
        }
        checked++;
      }
    }
    assert.equal(checked, 20000 + 300 + 4400 + 300 + 2 * 2300 + 2300 + 300);
  });

  test('SFT replies hold both styles in about equal measure; prose prompts start a worked sentence', () => {
    const replies = file(defaults, 'sft-3000.jsonl').records.map((r) => splitReply((r as SftRecord).messages[1].content)!);
    const friendly = replies.filter((x) => x.friendly).length;
    // Even odds over 3000 replies: 1500 +- 27 (one standard deviation); 4 sigma either side.
    assert.ok(Math.abs(friendly - 1500) < 110, `${friendly} of 3000 SFT replies friendly`);
    for (const r of file(defaults, 'prose-eval.jsonl').records) assert.match((r as { prompt: string }).prompt, /^To (add \d+ and \d+|take \d+ from \d+|multiply \d+ by \d+):$/);
  });

  test('short, in the built-in tokenizer alphabet, and the corpus is prose, not chat (questions may be asked, never answered in the chat format)', () => {
    const printable = /^[\x20-\x7e\n]*$/;
    let longest = 0;
    for (const f of defaults.files) {
      for (const r of f.records) {
        if (typeof ('prompt' in r ? r.prompt : null) === 'string') continue; // prose prompts: checked below with the corpus
        const texts = 'text' in r ? [r.text] : 'messages' in r ? r.messages.map((m) => m.content) : [...(r as PreferenceRecord | PromptRecord).prompt, ...('chosen' in r ? [...r.chosen, ...r.rejected] : [])].map((m) => m.content);
        for (const t of texts) assert.match(t, printable, `${f.name}: ${JSON.stringify(t)}`);
        if ('text' in r) {
          // One or two sentences: two asked 3-digit worked sentences are the longest documents.
          assert.ok(r.text.length <= 200, `${f.name}: ${r.text.length} characters: ${r.text}`);
          continue;
        }
        longest = Math.max(longest, 'chosen' in r ? r.prompt[0].content.length + Math.max(r.chosen[0].content.length, r.rejected[0].content.length) : texts.join('').length);
      }
    }
    assert.ok(longest <= 128, `longest example has ${longest} characters, budget 128`);
    for (const f of defaults.files.filter((x) => x.kind === 'corpus' || x.kind === 'prose')) {
      for (const r of f.records) assert.doesNotMatch('text' in r ? r.text : (r as { prompt: string }).prompt, /Answer:|<\||\n/, `${f.name}`);
    }
  });

  test('sizes past sftCoreSize change no other file: the run with the core as its largest size, plus larger SFT files', () => {
    const core = generateTaskData({ ...SMALL, sftSizes: [20, 50] });
    const swept = generateTaskData({ ...SMALL, sftSizes: [20, 50, 120], sftCoreSize: 50 });
    const names = core.files.map((f) => f.name);
    assert.deepEqual(swept.files.map((f) => f.name), [...names.slice(0, 4), 'sft-120.jsonl', ...names.slice(4)]);
    for (const f of core.files) assert.equal(serializeRecords(file(swept, f.name).records), serializeRecords(f.records), `${f.name} is byte for byte the core run's`);
    // The extra 70 SFT problems are new: disjoint from every other pool and from the held-out problems.
    const extra = new Set(keysOf(file(swept, 'sft-120.jsonl')).slice(50));
    assert.equal(extra.size, 70);
    for (const f of swept.files.filter((x) => x.kind !== 'corpus' && x.name !== 'sft-120.jsonl')) {
      for (const k of keysOf(f)) assert.ok(!extra.has(k), `${f.name} holds ${k}, one of the extra SFT problems`);
    }
    // Without a core the largest size is drawn first, as before: the preference pool then differs.
    const plain = generateTaskData({ ...SMALL, sftSizes: [20, 50, 120] });
    assert.notEqual(serializeRecords(file(plain, 'preference.jsonl').records), serializeRecords(file(core, 'preference.jsonl').records));
    assert.throws(() => parseTaskOptions({ sftSizes: [20, 50], sftCoreSize: 30 }), /task\.sftCoreSize: got 30, expected null or one of sftSizes \(20, 50\)/);
    assert.throws(() => parseTaskOptions({ sftCoreSize: 0 }), /task\.sftCoreSize: got 0, expected an integer in \[1, /);
  });

  test('options are validated with the field, the value and what was expected', () => {
    assert.throws(() => parseTaskOptions({ sftSizes: [300, 100] }), /task\.sftSizes\[1\]: got 100, expected a size larger than sftSizes\[0\] = 300/);
    assert.throws(() => parseTaskOptions({ seeed: 1 }), /task\.seeed: unknown option, expected one of seed, operations/);
    assert.throws(() => parseTaskOptions({ operations: ['add', 'div'] }), /task\.operations\[1\]: got "div", expected one of add, sub, mul/);
    assert.throws(() => parseTaskOptions({ minDigits: 1 }), /task\.minDigits: got 1, expected an integer in \[2, 6\]/);
    assert.throws(() => parseTaskOptions({ minDigits: 3, maxDigits: 2 }), /task\.maxDigits: got 2, expected a value >= minDigits \(3\)/);
    assert.throws(() => parseTaskOptions({ corpusSize: 1.5 }), /task\.corpusSize: got 1\.5, expected an integer/);
    assert.throws(() => parseTaskOptions([]), /task: got \[\], expected an object/);
    // 2-digit times one digit holds 90 * 8 = 720 problems: asking for 1000 distinct ones fails loudly instead of looping.
    assert.throws(
      () => generateTaskData({ operations: ['mul'], maxDigits: 2, evalSize: 1000, sftSizes: [1], corpusSize: 1, preferenceSize: 1, promptsSize: 1 }),
      /eval problems: drew only 720 of 1000 distinct problems .* holds 720/,
    );
  });
});
