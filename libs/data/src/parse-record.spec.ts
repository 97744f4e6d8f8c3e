import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDataConfig } from './data-config';
import { commonMessagePrefixLength, commonPrefixLength, detectFormat, parseRecord, type RecordSchema } from './parse-record';

const config = parseDataConfig({});
const fields = config.fields;
const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });

describe('detectFormat', () => {
  test('follows the fields present, and the style from the main field type', () => {
    assert.deepEqual(detectFormat({ text: 'a' }, fields), { format: 'language-modeling', style: 'standard' });
    assert.deepEqual(detectFormat({ messages: [] }, fields), { format: 'language-modeling', style: 'conversational' });
    assert.deepEqual(detectFormat({ prompt: 'a', completion: 'b' }, fields), { format: 'prompt-completion', style: 'standard' });
    assert.deepEqual(detectFormat({ prompt: [], completion: [] }, fields), { format: 'prompt-completion', style: 'conversational' });
    assert.deepEqual(detectFormat({ prompt: 'a', chosen: 'b', rejected: 'c' }, fields), { format: 'preference', style: 'standard' });
    assert.deepEqual(detectFormat({ chosen: [], rejected: [] }, fields), { format: 'implicit-preference', style: 'conversational' });
    assert.deepEqual(detectFormat({ prompt: 'a', answer: '1' }, fields), { format: 'prompt-only', style: 'standard' });
    assert.equal(detectFormat({ question: 'a' }, fields), null);
    assert.equal(detectFormat([1], fields), null);
  });

  test('uses renamed fields', () => {
    const renamed = parseDataConfig({ fields: { prompt: 'question', completion: 'answer' } }).fields;
    assert.deepEqual(detectFormat({ question: 'a', answer: 'b' }, renamed), { format: 'prompt-completion', style: 'standard' });
  });
});

describe('implicit prompt', () => {
  test('string common prefix, by hand', () => {
    // "The sky is blue." / "The sky is green.": shared "The sky is " (11 chars), then 'b' vs 'g'.
    assert.equal(commonPrefixLength('The sky is blue.', 'The sky is green.'), 11);
    assert.equal(commonPrefixLength('abc', 'abc'), 3);
    assert.equal(commonPrefixLength('x', 'y'), 0);
    // '\u{1F600}' and '\u{1F601}' share their high surrogate: the prefix must not split the pair.
    assert.equal(commonPrefixLength('a\u{1F600}', 'a\u{1F601}'), 1);
  });

  test('message common prefix compares role and content', () => {
    assert.equal(commonMessagePrefixLength([user('q'), assistant('a')], [user('q'), assistant('b')]), 1);
    assert.equal(commonMessagePrefixLength([user('q')], [{ role: 'system', content: 'q' }]), 0);
  });

  test('standard pair recovers the shared prefix as prompt', () => {
    const result = parseRecord({ chosen: 'The sky is blue.', rejected: 'The sky is green.' }, null, config);
    assert.ok(result.ok);
    assert.deepEqual(result.record, { format: 'implicit-preference', style: 'standard', prompt: 'The sky is ', chosen: 'blue.', rejected: 'green.' });
  });

  test('conversational pair recovers the shared messages as prompt', () => {
    const result = parseRecord({ chosen: [user('q'), assistant('yes')], rejected: [user('q'), assistant('no')] }, null, config);
    assert.ok(result.ok);
    assert.deepEqual(result.record, {
      format: 'implicit-preference',
      style: 'conversational',
      prompt: [user('q')],
      chosen: [assistant('yes')],
      rejected: [assistant('no')],
    });
  });

  test('identical responses, a response that is all prompt, and no shared message are problems', () => {
    const same = parseRecord({ chosen: 'abc', rejected: 'abc' }, null, config);
    assert.ok(!same.ok);
    assert.equal(same.problem.field, 'rejected');
    const prefix = parseRecord({ chosen: 'abc', rejected: 'abcd' }, null, config);
    assert.ok(!prefix.ok);
    assert.equal(prefix.problem.field, 'chosen');
    const unrelated = parseRecord({ chosen: [user('a'), assistant('b')], rejected: [user('c'), assistant('d')] }, null, config);
    assert.ok(!unrelated.ok);
    assert.match(unrelated.problem.expected, /shares its first messages/);
  });
});

describe('parseRecord', () => {
  const pcSchema: RecordSchema = { format: 'prompt-completion', style: 'standard', decidedBy: 'line 1', formatFromConfig: false };

  test('a missing field names the field and the file format', () => {
    const result = parseRecord({ prompt: 'a' }, pcSchema, config);
    assert.ok(!result.ok);
    assert.deepEqual(result.problem, {
      field: 'completion',
      expected: 'a non-empty string (standard prompt-completion format, decided by line 1)',
      got: 'nothing (field missing)',
    });
  });

  test('wrong types and empty values are problems', () => {
    const wrong = parseRecord({ prompt: 'a', completion: 8 }, pcSchema, config);
    assert.ok(!wrong.ok);
    assert.equal(wrong.problem.field, 'completion');
    assert.equal(wrong.problem.got, 'number 8');
    const empty = parseRecord({ prompt: '', completion: 'b' }, pcSchema, config);
    assert.ok(!empty.ok);
    assert.equal(empty.problem.got, 'an empty string');
  });

  test('message problems name the message and its key', () => {
    const result = parseRecord({ messages: [user('hi'), { role: 'assistant', content: 3 }] }, null, config);
    assert.ok(!result.ok);
    assert.equal(result.problem.field, 'messages[1].content');
    const noAssistant = parseRecord({ messages: [user('hi')] }, null, config);
    assert.ok(!noAssistant.ok);
    assert.match(noAssistant.problem.expected, /role "assistant"/);
  });

  test('a line of another format is a problem unless the config chose the format', () => {
    const schema: RecordSchema = { format: 'prompt-only', style: 'standard', decidedBy: 'line 1', formatFromConfig: false };
    const result = parseRecord({ prompt: 'a', completion: 'b' }, schema, config);
    assert.ok(!result.ok);
    assert.match(result.problem.got, /prompt-completion format/);
    const overridden = parseRecord({ prompt: 'a', completion: 'b' }, null, parseDataConfig({ format: 'prompt-only' }));
    assert.ok(overridden.ok);
    assert.deepEqual(overridden.record, { format: 'prompt-only', style: 'standard', prompt: 'a', groundTruth: null });
  });

  test('ground truth: answer or solution by default, numbers as strings, a named column required', () => {
    const answer = parseRecord({ prompt: 'a', answer: 12 }, null, config);
    assert.ok(answer.ok && answer.record.format === 'prompt-only');
    assert.equal(answer.record.format === 'prompt-only' && answer.record.groundTruth, '12');
    const solution = parseRecord({ prompt: 'a', solution: 'x' }, null, config);
    assert.ok(solution.ok && solution.record.format === 'prompt-only' && solution.record.groundTruth === 'x');
    const named = parseDataConfig({ groundTruthField: 'label' });
    const missing = parseRecord({ prompt: 'a', answer: '1' }, null, named);
    assert.ok(!missing.ok);
    assert.equal(missing.problem.field, 'label');
    const badType = parseRecord({ prompt: 'a', answer: [1] }, null, config);
    assert.ok(!badType.ok);
    assert.equal(badType.problem.field, 'answer');
  });

  test('non-objects and objects of no format', () => {
    const notObject = parseRecord([1, 2], null, config);
    assert.ok(!notObject.ok);
    assert.equal(notObject.problem.got, 'a list of 2');
    const noFormat = parseRecord({ question: 'a' }, null, config);
    assert.ok(!noFormat.ok);
    assert.equal(noFormat.problem.got, 'an object with fields "question"');
  });

  test('a style mismatch with the file is a type problem', () => {
    const schema: RecordSchema = { format: 'prompt-completion', style: 'conversational', decidedBy: 'line 1', formatFromConfig: false };
    const result = parseRecord({ prompt: 'a', completion: 'b' }, schema, config);
    assert.ok(!result.ok);
    assert.equal(result.problem.field, 'prompt');
    assert.match(result.problem.expected, /list of messages .*conversational prompt-completion/);
  });
});
