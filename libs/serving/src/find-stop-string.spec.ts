import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findStopString } from './find-stop-string';

test('findStopString: earliest occurrence wins; at the same index the longer stop', () => {
  assert.equal(findStopString('hello world', ['xyz']), null);
  assert.deepEqual(findStopString('a=1\nAnswer: 2\n\n', ['\n\n', 'Answer']), { index: 4, stop: 'Answer' });
  assert.deepEqual(findStopString('abcabc', ['bc', 'b']), { index: 1, stop: 'bc' });
  assert.deepEqual(findStopString('abcabc', ['b', 'bc']), { index: 1, stop: 'bc' });
  assert.equal(findStopString('', ['a']), null);
});
