import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '@posttrain/random';
import { askAtReplyDistance } from './asked-at-reply-distance';

const GAP = ' Worked out:\n';

describe('askAtReplyDistance', () => {
  const text = '76 plus 82 equals 158. What is 45+13? To add 45 and 13: 5+3=8, 4+1=5, so the sum is 58. Facts: 6+6=12. To take 13 from 45: 5-3=2, 4-1=3, so the difference is 32.';

  test('share 1: every worked sentence follows its own question and the gap; facts and fact lines are left alone', () => {
    const out = askAtReplyDistance(text, new Rng(1), 1, GAP);
    const asked = [...out.matchAll(/(What is (\d+)([+-])(\d+)\?|Compute (\d+)([+-])(\d+)\.|(\d+)([+-])(\d+)=\?) Worked out:\n(Sure! )?To (add (\d+) and (\d+)|take (\d+) from (\d+)):/g)];
    assert.equal(asked.length, 2, out);
    for (const m of asked) {
      const [a, op, b] = [m[2] ?? m[5] ?? m[8], m[3] ?? m[6] ?? m[9], m[4] ?? m[7] ?? m[10]];
      // "To add A and B" is A+B; "To take B from A" is A-B.
      if (m[13] !== undefined) assert.deepEqual([a, op, b], [m[13], '+', m[14]]);
      else assert.deepEqual([a, op, b], [m[16], '-', m[15]]);
    }
    assert.ok(out.startsWith('76 plus 82 equals 158. '));
    assert.ok(out.includes(' Facts: 6+6=12. '));
    assert.equal((out.match(/What is 45\+13\? To add/g) ?? []).length, 0, 'the old one-space question is replaced, not kept');
  });

  test('share 0: worked sentences stand alone (a question the corpus put before one is dropped)', () => {
    assert.equal(
      askAtReplyDistance(text, new Rng(1), 0, GAP),
      '76 plus 82 equals 158. To add 45 and 13: 5+3=8, 4+1=5, so the sum is 58. Facts: 6+6=12. To take 13 from 45: 5-3=2, 4-1=3, so the difference is 32.',
    );
  });

  test('the same generator state gives the same text; the lead-in and the phrasings all occur', () => {
    assert.equal(askAtReplyDistance(text, new Rng(5), 0.5, GAP), askAtReplyDistance(text, new Rng(5), 0.5, GAP));
    const rng = new Rng(2);
    const many = Array.from({ length: 200 }, () => askAtReplyDistance('To add 10 and 20: 0+0=0, 1+2=3, so the sum is 30.', rng, 1, GAP));
    assert.ok(many.some((t) => t.includes('\nSure! To add')) && many.some((t) => t.includes('\nTo add')));
    for (const q of ['What is 10+20?', 'Compute 10+20.', '10+20=?']) assert.ok(many.some((t) => t.startsWith(`${q}${GAP}`)), q);
  });

  test('bad arguments are named', () => {
    assert.throws(() => askAtReplyDistance(text, new Rng(1), 1.5, GAP), /^Error: share: got 1.5, expected a number in \[0, 1\]$/);
    assert.throws(() => askAtReplyDistance(text, new Rng(1), 1, ''), /^Error: gap: empty/);
  });
});
