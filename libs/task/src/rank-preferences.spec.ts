import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rankPreferences } from './rank-preferences';

describe('rankPreferences', () => {
  const chosenLogProbs = [-3, -9, -4];
  const rejectedLogProbs = [-5, -4, -4];

  test('by summed log-probs: margins 2, -5, 0 -> one right, one tie (counts as wrong), mean -1', () => {
    const r = rankPreferences({ chosenLogProbs, rejectedLogProbs });
    assert.deepEqual(r, { n: 3, accuracy: 1 / 3, ties: 1, meanMargin: -1, margins: [2, -5, 0] });
  });

  test('by the DPO implicit reward log pi - log pi_ref', () => {
    // chosen: -3+1 = -2, -9+10 = 1, -4+4 = 0; rejected: -5+6 = 1, -4+2 = -2, -4+5 = 1; margins -3, 3, -1.
    const r = rankPreferences({ chosenLogProbs, rejectedLogProbs, chosenRefLogProbs: [-1, -10, -4], rejectedRefLogProbs: [-6, -2, -5] });
    assert.deepEqual(r.margins, [-3, 3, -1]);
    assert.equal(r.accuracy, 1 / 3);
    assert.equal(r.ties, 0);
    assert.ok(Math.abs(r.meanMargin - -1 / 3) < 1e-15);
  });

  test('per token: a long right reply is not penalised for its length', () => {
    // chosen: -3/3 = -1, -9/9 = -1, -4/2 = -2; rejected: -5/10 = -0.5, -4/2 = -2, -4/4 = -1; margins -0.5, 1, -1.
    const r = rankPreferences({ chosenLogProbs, rejectedLogProbs, chosenLengths: [3, 9, 2], rejectedLengths: [10, 2, 4] });
    assert.deepEqual(r.margins, [-0.5, 1, -1]);
    assert.equal(r.accuracy, 1 / 3);
    assert.ok(Math.abs(r.meanMargin - -1 / 6) < 1e-15);
  });

  test('bad input names the field', () => {
    assert.throws(() => rankPreferences({ chosenLogProbs: [], rejectedLogProbs: [] }), /chosenLogProbs: got \[\], expected a non-empty list/);
    assert.throws(() => rankPreferences({ chosenLogProbs: [-1, -2], rejectedLogProbs: [-1] }), /rejectedLogProbs: got 1 values, expected 2 \(one per pair\)/);
    assert.throws(() => rankPreferences({ chosenLogProbs: [-1], rejectedLogProbs: [Number.NaN] }), /rejectedLogProbs\[0\]: got null, expected a finite number/);
    assert.throws(() => rankPreferences({ chosenLogProbs: [-1], rejectedLogProbs: [-2], chosenLengths: [3] }), /rejectedLengths: missing, but chosenLengths is given/);
    assert.throws(() => rankPreferences({ chosenLogProbs: [-1], rejectedLogProbs: [-2], chosenLengths: [0], rejectedLengths: [1] }), /chosenLengths\[0\]: got 0, expected a finite number > 0/);
  });
});
