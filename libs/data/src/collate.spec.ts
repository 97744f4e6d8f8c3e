import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PackedSftBatchBuilder } from './batch-builder';
import { collatePreference, collatePrompts, collateSft, packSft, padSequences, shiftLabels } from './collate';
import type { SftExample } from './tokenize-example';

const i32 = (values: number[]) => Int32Array.from(values);
const A: SftExample = { line: 1, inputIds: [1, 10, 11], lossMask: [0, 1, 1] };
const B: SftExample = { line: 2, inputIds: [1, 20], lossMask: [0, 1] };
const C: SftExample = { line: 3, inputIds: [1, 30, 31, 32], lossMask: [0, 0, 1, 1] };
const D: SftExample = { line: 4, inputIds: [40, 41], lossMask: [1, 1] };

describe('padSequences', () => {
  test('right and left padding, by hand', () => {
    assert.deepEqual(padSequences([[5, 6], [7]], 3, 0, 'right'), i32([5, 6, 0, 7, 0, 0]));
    assert.deepEqual(padSequences([[5, 6], [7]], 3, 0, 'left'), i32([0, 5, 6, 0, 0, 7]));
    assert.throws(() => padSequences([[1, 2, 3]], 2, 0), /row 0 has 3 values, more than the length 2/);
  });
});

describe('shiftLabels', () => {
  test('shifts each row left by one, padding the last column', () => {
    const { labels, labelMask } = shiftLabels(i32([1, 2, 3, 4, 5, 6]), i32([0, 1, 1, 0, 0, 1]), 3, 9);
    assert.deepEqual(labels, i32([2, 3, 9, 5, 6, 9]));
    assert.deepEqual(labelMask, i32([1, 1, 0, 0, 1, 0]));
    assert.throws(() => shiftLabels(i32([1, 2, 3]), i32([0, 1]), 3, 0), /one length, a multiple of seqLen 3/);
  });
});

describe('packSft', () => {
  test('masks of two packed rows match a hand-built layout', () => {
    const batch = packSft([[A, B], [C]], 6, 0);
    assert.equal(batch.batchSize, 2);
    assert.equal(batch.seqLen, 6);
    // row 0: A (3 tokens) then B (2 tokens) then one pad; row 1: C (4 tokens) then two pads.
    assert.deepEqual(batch.inputIds, i32([1, 10, 11, 1, 20, 0, /**/ 1, 30, 31, 32, 0, 0]));
    assert.deepEqual(batch.attentionMask, i32([1, 1, 1, 1, 1, 0, /**/ 1, 1, 1, 1, 0, 0]));
    assert.deepEqual(batch.segmentIds, i32([1, 1, 1, 2, 2, 0, /**/ 1, 1, 1, 1, 0, 0]));
    assert.deepEqual(batch.positionIds, i32([0, 1, 2, 0, 1, 0, /**/ 0, 1, 2, 3, 0, 0]));
    assert.deepEqual(batch.lossMask, i32([0, 1, 1, 0, 1, 0, /**/ 0, 0, 1, 1, 0, 0]));
    // Next-token form: position 2 (A's last token) would predict B's first token: masked.
    assert.deepEqual(batch.labels, i32([10, 11, 1, 20, 0, 0, /**/ 30, 31, 32, 0, 0, 0]));
    assert.deepEqual(batch.labelMask, i32([1, 1, 0, 1, 0, 0, /**/ 0, 1, 1, 0, 0, 0]));
    assert.deepEqual(batch.lines, [[1, 2], [3]]);
  });

  test('the first token of every packed example is never a target, whatever its own mask says', () => {
    // D's mask claims its first token; packed after A, training it would predict across the boundary from A's last token.
    const batch = packSft([[A, D]], 5, 0);
    assert.deepEqual(batch.lossMask, i32([0, 1, 1, 0, 1]));
    assert.deepEqual(batch.segmentIds, i32([1, 1, 1, 2, 2]));
  });

  test('block-diagonal attention from segment ids: no token sees another example', () => {
    const batch = packSft([[A, B, D]], 8, 0);
    const T = batch.seqLen;
    // Plain-loop reference: the allowed (query, key) pairs are key <= query within the same example.
    const starts = [0, 3, 5];
    const lengths = [3, 2, 2];
    for (let q = 0; q < T; q++) {
      for (let k = 0; k < T; k++) {
        const segQ = batch.segmentIds[q];
        const allowed = segQ !== 0 && segQ === batch.segmentIds[k] && k <= q;
        let expected = false;
        starts.forEach((s, e) => {
          if (q >= s && q < s + lengths[e] && k >= s && k <= q) expected = true;
        });
        assert.equal(allowed, expected, `q=${q} k=${k}`);
      }
    }
  });

  test('rejects rows longer than seqLen and masks of the wrong length', () => {
    assert.throws(() => packSft([[A, C]], 6, 0), /row 0 holds 7 tokens, more than seqLen 6/);
    assert.throws(() => packSft([[{ line: 9, inputIds: [1, 2], lossMask: [0] }]], 4, 0), /line 9 has 2 ids but 1 loss-mask/);
  });
});

describe('PackedSftBatchBuilder', () => {
  test('fills rows greedily in order and refuses what does not fit', () => {
    const builder = new PackedSftBatchBuilder(2, 6, 0);
    assert.ok(builder.tryAdd(A)); // row 0: 3
    assert.ok(builder.tryAdd(B)); // row 0: 5
    assert.ok(builder.tryAdd(C)); // 4 does not fit in row 0 (1 left): row 1: 4
    assert.ok(!builder.isFull());
    assert.ok(!builder.tryAdd({ line: 5, inputIds: [1, 2, 3], lossMask: [0, 1, 1] })); // 3 > 2 left in the last row
    assert.equal(builder.count, 3);
    assert.ok(builder.tryAdd(D)); // row 1: 6
    assert.ok(builder.isFull());
    const batch = builder.build();
    assert.deepEqual(batch.lines, [[1, 2], [3, 4]]);
    assert.equal(builder.count, 0);
    assert.throws(() => builder.tryAdd({ line: 6, inputIds: [1, 2, 3, 4, 5, 6, 7], lossMask: [0, 1, 1, 1, 1, 1, 1] }), /line 6 has 7 tokens, more than the row length 6/);
  });
});

describe('collateSft', () => {
  test('one example per row, right-padded to the longest (rounded up)', () => {
    const batch = collateSft([A, B], { padTokenId: 9, padToMultipleOf: 4 });
    assert.equal(batch.seqLen, 4);
    assert.deepEqual(batch.inputIds, i32([1, 10, 11, 9, 1, 20, 9, 9]));
    assert.deepEqual(batch.attentionMask, i32([1, 1, 1, 0, 1, 1, 0, 0]));
    assert.deepEqual(batch.lossMask, i32([0, 1, 1, 0, 0, 1, 0, 0]));
    assert.deepEqual(batch.positionIds, i32([0, 1, 2, 0, 0, 1, 0, 0]));
    assert.deepEqual(batch.segmentIds, i32([1, 1, 1, 0, 1, 1, 0, 0]));
    assert.throws(() => collateSft([], { padTokenId: 0 }), /at least one example/);
  });
});

describe('collatePreference', () => {
  test('prompt + response, right-padded to one length, loss on responses only', () => {
    const batch = collatePreference(
      [
        { line: 1, promptIds: [1, 5], chosenIds: [6, 2], rejectedIds: [7, 7, 2] },
        { line: 2, promptIds: [1], chosenIds: [8, 2], rejectedIds: [2] },
      ],
      { padTokenId: 0 },
    );
    // Longest: 2 + 3 = 5.
    assert.equal(batch.seqLen, 5);
    assert.deepEqual(batch.chosenInputIds, i32([1, 5, 6, 2, 0, /**/ 1, 8, 2, 0, 0]));
    assert.deepEqual(batch.chosenAttentionMask, i32([1, 1, 1, 1, 0, /**/ 1, 1, 1, 0, 0]));
    assert.deepEqual(batch.chosenLossMask, i32([0, 0, 1, 1, 0, /**/ 0, 1, 1, 0, 0]));
    assert.deepEqual(batch.rejectedInputIds, i32([1, 5, 7, 7, 2, /**/ 1, 2, 0, 0, 0]));
    assert.deepEqual(batch.rejectedAttentionMask, i32([1, 1, 1, 1, 1, /**/ 1, 1, 0, 0, 0]));
    assert.deepEqual(batch.rejectedLossMask, i32([0, 0, 1, 1, 1, /**/ 0, 1, 0, 0, 0]));
    assert.deepEqual(batch.chosenLabels, i32([5, 6, 2, 0, 0, /**/ 8, 2, 0, 0, 0]));
    assert.deepEqual(batch.chosenLabelMask, i32([0, 1, 1, 0, 0, /**/ 1, 1, 0, 0, 0]));
    assert.deepEqual(batch.rejectedLabels, i32([5, 7, 7, 2, 0, /**/ 2, 0, 0, 0, 0]));
    assert.deepEqual(batch.rejectedLabelMask, i32([0, 1, 1, 1, 0, /**/ 1, 0, 0, 0, 0]));
    assert.deepEqual(batch.promptLengths, i32([2, 1]));
    assert.deepEqual(batch.lines, [1, 2]);
  });
});

describe('collatePrompts', () => {
  const examples = [
    { line: 1, promptIds: [1, 5, 6], prompt: 'ab', groundTruth: '3' },
    { line: 2, promptIds: [1, 7], prompt: 'c', groundTruth: null },
  ];
  test('left padding (default) puts every prompt at the end, positions count real tokens', () => {
    const batch = collatePrompts(examples, { padTokenId: 0 });
    assert.equal(batch.paddingSide, 'left');
    assert.deepEqual(batch.inputIds, i32([1, 5, 6, 0, 1, 7]));
    assert.deepEqual(batch.attentionMask, i32([1, 1, 1, 0, 1, 1]));
    assert.deepEqual(batch.positionIds, i32([0, 1, 2, 0, 0, 1]));
    assert.deepEqual(batch.promptLengths, i32([3, 2]));
    assert.deepEqual(batch.groundTruths, ['3', null]);
    assert.deepEqual(batch.prompts, ['ab', 'c']);
  });
  test('right padding on request', () => {
    const batch = collatePrompts(examples, { padTokenId: 0, paddingSide: 'right' });
    assert.deepEqual(batch.inputIds, i32([1, 5, 6, 1, 7, 0]));
    assert.deepEqual(batch.positionIds, i32([0, 1, 2, 0, 1, 0]));
  });
});
