import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ScoreItem } from '@posttrain/proto';
import { parseRewardSpec } from './parse-reward-spec';
import { RewardBudgetError, RewardPreconditionError, RewardValidationError } from './reward-errors';
import { repetitionNesting } from './request-limits';
import { scoreItems, type RewardModelFn } from './score-items';
import { item } from './test-support';

const components = parseRewardSpec([
  { name: 'correct', weight: 1, rule: 'numeric_match', params: { extraction: { mode: 'after_marker', pattern: 'Answer:' } } },
  { name: 'format', weight: 0.25, rule: 'format', params: { answer_marker: 'Answer:' } },
  { name: 'polite', weight: -0.5, rule: 'regex', params: { pattern: 'sorry', flags: 'i' } },
  { name: 'len', weight: 2, rule: 'length_penalty', params: { target_length: 10, penalty_per_unit: 0.125, max_penalty: 1, unit: 'characters' } },
]);

describe('scoreItems: weighted rule mix', () => {
  test('per-component values, weighted values and totals, checked by hand', async () => {
    const items: ScoreItem[] = [
      // 22 chars ("3*6+1 is 19" 11 + "\n" 1 + "Answer: 19" 10). correct 1 (19 = 19); format 1; polite 0;
      // len: 12 over * 0.125 = 1.5, capped at 1 -> -1. weighted: 1, 0.25, 0, -2 -> total -0.75.
      item('3*6+1 is 19\nAnswer: 19', { id: 'a', groundTruth: '19' }),
      // 10 chars: "Answer: 20". correct 0; format 1; polite 0; len 0 (exactly at the target).
      // weighted: 0, 0.25, 0, 0 -> total 0.25.
      item('Answer: 20', { id: 'b', groundTruth: '19' }),
      // 17 chars. correct 1 (the marker is found mid-line); format 0 (the last line starts with "Sorry.", not
      // the marker); polite 1; len: 7 over * 0.125 = 0.875 -> -0.875.
      // weighted: 1, 0, -0.5, -1.75 -> total -1.25.
      item('Sorry. Answer: 19', { id: 'c', groundTruth: '19' }),
      // empty: correct 0 (no answer), format 0, polite 0, len 0 -> total 0.
      item('', { id: 'd', groundTruth: '19' }),
    ];
    const scores = await scoreItems(items, components);
    assert.deepEqual(scores, [
      {
        id: 'a',
        reward: -0.75,
        components: [
          { name: 'correct', value: 1, weighted: 1 },
          { name: 'format', value: 1, weighted: 0.25 },
          { name: 'polite', value: 0, weighted: 0 },
          { name: 'len', value: -1, weighted: -2 },
        ],
      },
      {
        id: 'b',
        reward: 0.25,
        components: [
          { name: 'correct', value: 0, weighted: 0 },
          { name: 'format', value: 1, weighted: 0.25 },
          { name: 'polite', value: 0, weighted: 0 },
          { name: 'len', value: 0, weighted: 0 },
        ],
      },
      {
        id: 'c',
        reward: -1.25,
        components: [
          { name: 'correct', value: 1, weighted: 1 },
          { name: 'format', value: 0, weighted: 0 },
          { name: 'polite', value: 1, weighted: -0.5 },
          { name: 'len', value: -0.875, weighted: -1.75 },
        ],
      },
      {
        id: 'd',
        reward: 0,
        components: [
          { name: 'correct', value: 0, weighted: 0 },
          { name: 'format', value: 0, weighted: 0 },
          { name: 'polite', value: 0, weighted: 0 },
          { name: 'len', value: 0, weighted: 0 },
        ],
      },
    ]);
  });
  test('the total is the sum of weighted values (plain-loop reference on many items)', async () => {
    const weights = components.map((c) => c.weight);
    const texts = ['Answer: 19', 'sorry Answer: 18', 'x'.repeat(30), 'a\nAnswer: 19.0', 'SORRY\nAnswer: 1,9'];
    const scores = await scoreItems(texts.map((t, i) => item(t, { id: String(i), groundTruth: '19' })), components);
    for (const s of scores) {
      let total = 0;
      s.components.forEach((c, j) => {
        // Equal as numbers (== treats -0 and 0 alike; the implementation writes -0 as 0).
        assert.ok(c.weighted == weights[j] * c.value, `${c.weighted} vs ${weights[j]} * ${c.value}`);
        total += weights[j] * c.value;
      });
      assert.ok(s.reward == total, `${s.reward} vs ${total}`);
    }
    // Spot values: "a\nAnswer: 19.0" is correct; "SORRY\nAnswer: 1,9" is not a number (bad grouping) -> 0.
    assert.equal(scores[3].components[0].value, 1);
    assert.equal(scores[4].components[0].value, 0);
    assert.equal(scores[4].components[2].value, 1);
  });
  test('weight 0 scores a component without counting it', async () => {
    const comps = parseRewardSpec([
      { name: 'shown', weight: 0, rule: 'regex', params: { pattern: 'x' } },
      { name: 'counted', weight: 3, rule: 'regex', params: { pattern: 'y' } },
    ]);
    const [s] = await scoreItems([item('xy')], comps);
    assert.deepEqual(s, { id: 'it', reward: 3, components: [{ name: 'shown', value: 1, weighted: 0 }, { name: 'counted', value: 1, weighted: 3 }] });
  });
  test('negative weight on a length penalty gives +0 weighted when there is no penalty (no -0)', async () => {
    const comps = parseRewardSpec([{ name: 'len', weight: -1, rule: 'length_penalty', params: { target_length: 5, penalty_per_unit: 1, unit: 'characters' } }]);
    const [s] = await scoreItems([item('abc')], comps);
    assert.ok(Object.is(s.components[0].weighted, 0) && Object.is(s.reward, 0));
  });
  test('no items gives no scores', async () => {
    assert.deepEqual(await scoreItems([], components), []);
  });
});

describe('scoreItems: reward model', () => {
  const rmSpec = (params: Record<string, unknown> = {}, weight = 1) => parseRewardSpec([{ name: 'rm', weight, rule: 'reward_model', params }]);
  const fakeModel = (scores: number[]) => {
    const calls: string[][] = [];
    const fn: RewardModelFn = async (items) => {
      calls.push(items.map((i) => i.id));
      return scores;
    };
    return { fn, calls };
  };

  test('raw scores pass through with shift 0 and scale 0 (= 1)', async () => {
    const { fn } = fakeModel([0.5, -1.25]);
    const scores = await scoreItems([item('a', { id: 'x' }), item('b', { id: 'y' })], rmSpec(), { rewardModel: fn });
    assert.deepEqual(scores.map((s) => [s.id, s.reward, s.components[0].value]), [
      ['x', 0.5, 0.5],
      ['y', -1.25, -1.25],
    ]);
  });
  test('value = (raw - shift) * scale, then weighted', async () => {
    // (1.5 - 0.5) * 2 = 2, weighted by 0.25 -> 0.5; (-0.5 - 0.5) * 2 = -2 -> -0.5.
    const { fn } = fakeModel([1.5, -0.5]);
    const scores = await scoreItems([item('a'), item('b')], rmSpec({ shift: 0.5, scale: 2 }, 0.25), { rewardModel: fn });
    assert.deepEqual(scores.map((s) => s.components[0]), [
      { name: 'rm', value: 2, weighted: 0.5 },
      { name: 'rm', value: -2, weighted: -0.5 },
    ]);
  });
  test('mixed with rules; the model is called once for several reward_model components', async () => {
    const comps = parseRewardSpec([
      { name: 'rm_raw', weight: 1, rule: 'reward_model' },
      { name: 'rm_centered', weight: 1, rule: 'reward_model', params: { shift: 1 } },
      { name: 'correct', weight: 2, rule: 'exact_match' },
    ]);
    const { fn, calls } = fakeModel([3]);
    const [s] = await scoreItems([item('42', { id: 'q', groundTruth: '42' })], comps, { rewardModel: fn });
    // 3 + (3 - 1) + 2 * 1 = 7.
    assert.equal(s.reward, 7);
    assert.deepEqual(s.components.map((c) => c.value), [3, 2, 1]);
    assert.deepEqual(calls, [['q']]);
  });
  test('without a reward model: RewardPreconditionError naming the component', async () => {
    await assert.rejects(scoreItems([item('a')], rmSpec()), (err: unknown) => {
      assert.ok(err instanceof RewardPreconditionError);
      assert.equal(err.field, 'components[0].reward_model');
      assert.equal(err.message, 'components[0].reward_model: component "rm" needs a reward model, but none is served here (rules only)');
      return true;
    });
  });
  test('expected_model_id must match the served id', async () => {
    const { fn } = fakeModel([1]);
    await scoreItems([item('a')], rmSpec({ expected_model_id: 'rm-v2' }), { rewardModel: fn, rewardModelId: 'rm-v2' });
    await assert.rejects(
      scoreItems([item('a')], rmSpec({ expected_model_id: 'rm-v2' }), { rewardModel: fn, rewardModelId: 'rm-v1' }),
      (err: unknown) =>
        err instanceof RewardPreconditionError &&
        err.message === 'components[0].reward_model.expected_model_id: expects reward model "rm-v2", but "rm-v1" is served',
    );
    await assert.rejects(
      scoreItems([item('a')], rmSpec({ expected_model_id: 'rm-v2' }), { rewardModel: fn }),
      (err: unknown) =>
        err instanceof RewardPreconditionError &&
        err.message === 'components[0].reward_model.expected_model_id: expects reward model "rm-v2", but a model without an id is served',
    );
  });
  test('an item error surfaces before the reward model is called', async () => {
    const comps = parseRewardSpec([{ name: 'rm', rule: 'reward_model' }, { name: 'ok', rule: 'numeric_match' }]);
    const { fn, calls } = fakeModel([1, 1]);
    await assert.rejects(
      scoreItems([item('1', { id: 'a', groundTruth: '1' }), item('2', { id: 'b' })], comps, { rewardModel: fn }),
      (err: unknown) =>
        err instanceof RewardValidationError &&
        err.message === 'items[1].ground_truth: missing (item id "b"), but components[1] ("ok", numeric_match) compares answers against it',
    );
    assert.equal(calls.length, 0);
  });
  test('a reward model returning the wrong count or a non-finite score is an internal error', async () => {
    await assert.rejects(scoreItems([item('a'), item('b')], rmSpec(), { rewardModel: fakeModel([1]).fn }), {
      name: 'Error',
      message: 'reward model returned 1 scores for 2 items',
    });
    await assert.rejects(scoreItems([item('a', { id: 'z' })], rmSpec(), { rewardModel: fakeModel([Number.NaN]).fn }), {
      name: 'Error',
      message: 'reward model returned NaN for items[0] (item id "z"), expected a finite score',
    });
  });
});

describe('scoreItems: validation', () => {
  test('bad components are RewardValidationErrors on components[...]', async () => {
    await assert.rejects(
      scoreItems([item('a')], [{ name: 'w', weight: Number.NaN, rule: { $case: 'regex', value: { pattern: 'a', flags: '', fullMatch: false, negate: false } } }]),
      (err: unknown) => err instanceof RewardValidationError && err.message === 'components[0].weight: got NaN, expected a finite number',
    );
  });
  test('a completion that is not a string', async () => {
    await assert.rejects(
      scoreItems([item('a'), { ...item('b'), completion: undefined as unknown as string }], parseRewardSpec([{ rule: 'regex', params: { pattern: 'a' } }])),
      (err: unknown) => err instanceof RewardValidationError && err.message === 'items[1].completion: got nothing, expected a string',
    );
  });
  test('a catastrophically backtracking regex is stopped and refused on its pattern', async () => {
    const evil = `${'a'.repeat(30)}b`;
    const slowRule = parseRewardSpec([{ name: 'ok', rule: 'regex', params: { pattern: 'a' } }, { name: 'evil', rule: 'regex', params: { pattern: '^(a+)+$' } }]);
    await assert.rejects(
      scoreItems([item('aaa'), item(evil)], slowRule, { regexTimeLimitMs: 50, limits: { maxRepetitionNesting: 2 } }),
      (err: unknown) =>
        err instanceof RewardValidationError &&
        err.message ===
          'components[1].regex.pattern: matching 2 completion(s) took longer than 50 ms and was stopped; the pattern likely backtracks catastrophically (nested quantifiers such as (a+)+), simplify it',
    );
    const slowExtraction = parseRewardSpec([{ name: 'x', rule: 'exact_match', params: { extraction: { mode: 'regex', pattern: '(a+)+c' } } }]);
    await assert.rejects(
      scoreItems([item(evil, { groundTruth: 'a' })], slowExtraction, { regexTimeLimitMs: 50, limits: { maxRepetitionNesting: 2 } }),
      (err: unknown) => err instanceof RewardValidationError && err.field === 'components[0].exact_match.extraction.pattern',
    );
  });
  test('request limits: nested repetition, long patterns and too many components are refused before anything runs, without echoing the pattern', async () => {
    const refused = (field: string, re: RegExp) => (err: unknown) => err instanceof RewardValidationError && err.field === field && re.test(err.problem);
    await assert.rejects(scoreItems([item('aaa')], parseRewardSpec([{ name: 'evil', rule: 'regex', params: { pattern: '^(a+)+$' } }])), refused('components[0].regex.pattern', /^repetition operators nested 2 deep \(such as \(a\+\)\+\), expected at most 1/));
    await assert.rejects(
      scoreItems([item('a', { groundTruth: 'a' })], parseRewardSpec([{ name: 'x', rule: 'numeric_match', params: { extraction: { mode: 'regex', pattern: '(\\d+,?)*' } } }])),
      refused('components[0].numeric_match.extraction.pattern', /nested 2 deep/),
    );
    const long = `(${'ab|'.repeat(17_000)}c)`; // 51 002 characters
    await assert.rejects(scoreItems([item('a')], parseRewardSpec([{ name: 'long', rule: 'regex', params: { pattern: long } }])), (err: unknown) => {
      assert.ok(err instanceof RewardValidationError);
      assert.equal(err.message, `components[0].regex.pattern: got a pattern of ${long.length} characters, expected at most 1000`);
      return true;
    });
    const many = parseRewardSpec(Array.from({ length: 33 }, (_, i) => ({ name: `c${i}`, rule: 'regex' as const, params: { pattern: 'a' } })));
    await assert.rejects(scoreItems([item('a')], many), refused('components', /^got 33 components, expected at most 32$/));
    assert.equal((await scoreItems([item('a')], many.slice(0, 32))).length, 1, '32 components are fine');
    // A syntax error in a long pattern (under a raised bound) quotes only its start.
    const bad = `${'x'.repeat(5000)}(`;
    const badComponent = { name: 'bad', weight: 1, rule: { $case: 'regex' as const, value: { pattern: bad, flags: '', fullMatch: false, negate: false } } };
    await assert.rejects(scoreItems([item('a')], [badComponent], { limits: { maxPatternChars: 10_000 } }), (err: unknown) => {
      assert.ok(err instanceof RewardValidationError && err.field === 'components[0].regex.pattern');
      assert.ok(err.message.length < 400, `message of ${err.message.length} characters`);
      assert.match(err.message, /\.\.\.\(5001 characters\)/);
      return true;
    });
  });
  test('repetitionNesting counts nested repetition operators, not escapes, classes, ? or {n}', () => {
    const cases: [string, number][] = [['abc', 0], ['\\d+', 1], ['(ab)+', 1], ['(a+)+', 2], ['((a*)*)*', 3], ['[(+]*', 1], ['\\(a+\\)+', 1], ['a{2}', 0], ['(a{2})+', 1], ['(a{1,3})*', 2], ['(a?)+', 1], ['(a+?b)+', 2], ['(a+)|(b+)', 1], ['x{', 0]];
    for (const [pattern, depth] of cases) assert.equal(repetitionNesting(pattern), depth, pattern);
  });
  test('the total time budget stops a request whose regular expressions together run too long: RewardBudgetError naming where it stopped', async () => {
    const evil = `${'a'.repeat(28)}b`;
    const spec = parseRewardSpec([{ name: 'ok', rule: 'regex', params: { pattern: 'a' } }, { name: 'slow', rule: 'regex', params: { pattern: '^(a|a)*$' } }]); // nesting 1, exponential on evil
    const began = Date.now();
    await assert.rejects(scoreItems([item(evil)], spec, { regexTimeLimitMs: 5_000, timeBudgetMs: 200 }), (err: unknown) => {
      assert.ok(err instanceof RewardBudgetError, String(err));
      assert.match(err.message, /took more than its 200 ms budget in total \(stopped at components\[1\]\.regex\.pattern\)/);
      return true;
    });
    assert.ok(Date.now() - began < 2_000, `stopped after ${Date.now() - began} ms`);
  });
  test('custom field paths', async () => {
    await assert.rejects(
      scoreItems([item('a')], parseRewardSpec([{ rule: 'exact_match' }]), { itemsField: 'batch.items', componentsField: 'spec' }),
      (err: unknown) => err instanceof RewardValidationError && err.field === 'batch.items[0].ground_truth',
    );
  });
});
