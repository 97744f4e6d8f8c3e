import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DataConfigError, defaultDataConfig, parseDataConfig } from './data-config';

describe('parseDataConfig', () => {
  test('fills defaults for a missing or empty config', () => {
    assert.deepEqual(parseDataConfig(undefined), defaultDataConfig());
    assert.deepEqual(parseDataConfig({}), defaultDataConfig());
  });

  test('accepts every key with the right type', () => {
    const config = parseDataConfig({
      format: 'prompt-only',
      style: 'conversational',
      fields: { prompt: 'question' },
      groundTruthField: 'label',
      errorPolicy: 'skip',
      maxLength: 128,
      truncation: 'drop',
      seed: 42,
      shuffle: false,
      batchSize: 3,
      dropLast: true,
      packing: true,
      assistantOnlyLoss: false,
      completionOnlyLoss: false,
    });
    assert.equal(config.format, 'prompt-only');
    assert.equal(config.style, 'conversational');
    assert.equal(config.fields.prompt, 'question');
    assert.equal(config.fields.completion, 'completion');
    assert.equal(config.groundTruthField, 'label');
    assert.equal(config.maxLength, 128);
    assert.equal(config.packing, true);
    assert.equal(config.seed, 42);
  });

  test("'auto' format and style mean detection", () => {
    const config = parseDataConfig({ format: 'auto', style: 'auto' });
    assert.equal(config.format, null);
    assert.equal(config.style, null);
  });

  test('names unknown keys, with the known ones', () => {
    assert.throws(() => parseDataConfig({ batch_size: 4 }), (e: Error) => e instanceof DataConfigError && /data\.batch_size: unknown key \(known keys: .*batchSize/.test(e.message));
    assert.throws(() => parseDataConfig({ fields: { answer: 'x' } }), /data\.fields\.answer: unknown key/);
  });

  test('names the key, the value and what was expected for wrong types', () => {
    assert.throws(() => parseDataConfig({ format: 'dpo' }), /data\.format: expected one of "language-modeling", .*got string "dpo"/);
    assert.throws(() => parseDataConfig({ maxLength: 1.5 }), /data\.maxLength: expected an integer in \[2, .*got number 1\.5/);
    assert.throws(() => parseDataConfig({ seed: -1 }), /data\.seed: expected an integer in \[0, 4294967295\], got number -1/);
    assert.throws(() => parseDataConfig({ shuffle: 'yes' }), /data\.shuffle: expected true or false, got string "yes"/);
    assert.throws(() => parseDataConfig({ fields: { prompt: '' } }), /data\.fields\.prompt: expected a non-empty string/);
    assert.throws(() => parseDataConfig([1]), /data: expected an object, got list \[1\]/);
    assert.throws(() => parseDataConfig({ errorPolicy: 'ignore' }, 'sft.data'), /sft\.data\.errorPolicy: expected one of "fail", "skip"/);
  });

  test('packing needs maxLength; field names must be distinct', () => {
    assert.throws(() => parseDataConfig({ packing: true }), /data\.packing: packing needs data\.maxLength/);
    assert.throws(() => parseDataConfig({ fields: { prompt: 'text' } }), /text and prompt both use the JSON field "text"/);
  });
});
