import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CHATML_TEMPLATE } from './builtin-tokenizer';
import { ChatTemplate } from './chat-template';
import { createTokenizer, loadTokenizer } from './load-tokenizer';

/**
 * A tiny BPE tokenizer of another shape than the built-in one: real merges
 * (l o -> lo, lo w -> low, e r -> er, low er -> lower, \n \n -> \n\n), Llama-3
 * special tokens, and a TemplateProcessing post-processor that prepends BOS.
 */
const SPECIALS = ['<|begin_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'];
function bpeTokenizerJson(): object {
  const vocab: Record<string, number> = {};
  for (const c of 'abcdefghijklmnopqrstuvwxyz') vocab[c] = Object.keys(vocab).length; // a=0 ... z=25
  vocab['\n'] = 26;
  vocab[' '] = 27;
  vocab['!'] = 28;
  vocab.lo = 29;
  vocab.low = 30;
  vocab.er = 31;
  vocab.lower = 32;
  vocab['\n\n'] = 33;
  SPECIALS.forEach((s, i) => (vocab[s] = 34 + i)); // 34..37
  return {
    version: '1.0',
    added_tokens: SPECIALS.map((content, i) => ({ id: 34 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [34], tokens: ['<|begin_of_text|>'] } },
    },
    decoder: { type: 'Fuse' },
    model: { type: 'BPE', dropout: null, unk_token: null, fuse_unk: false, byte_fallback: false, vocab, merges: ['l o', 'lo w', 'e r', 'low er', '\n \n'] },
  };
}

// The Llama-3 instruct template's structure (bos once, header, "\n\n", trimmed content, <|eot_id|>).
const LLAMA3_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

const llamaConfig = (overrides: Record<string, unknown> = {}) => ({
  bos_token: '<|begin_of_text|>',
  eos_token: { content: '<|eot_id|>', lstrip: false, normalized: false, rstrip: false, single_word: false, __type: 'AddedToken' },
  clean_up_tokenization_spaces: false,
  chat_template: LLAMA3_TEMPLATE,
  ...overrides,
});

let root = '';
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'load-tokenizer-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function writeDir(name: string, files: Record<string, unknown>): Promise<string> {
  const dir = join(root, name);
  await rm(dir, { recursive: true, force: true });
  await import('node:fs/promises').then((fs) => fs.mkdir(dir, { recursive: true }));
  for (const [file, content] of Object.entries(files)) {
    await writeFile(join(dir, file), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

describe('a BPE tokenizer.json with merges and a Llama-3-style template', () => {
  test('loads and encodes with its merges and post-processor', async () => {
    const tok = await loadTokenizer(await writeDir('bpe', { 'tokenizer.json': bpeTokenizerJson(), 'tokenizer_config.json': llamaConfig() }));
    // "lower low!" -> l o w e r | " " | l o w | ! ; merges give lower(32) " "(27) low(30) !(28); BOS 34 from the post-processor.
    assert.deepEqual(tok.encode('lower low!'), [34, 32, 27, 30, 28]);
    assert.deepEqual(tok.encode('lower low!', { addSpecialTokens: false }), [32, 27, 30, 28]);
    assert.deepEqual(tok.encode('rel', { addSpecialTokens: false }), [17, 4, 11]); // no merge applies: r e l
    assert.equal(tok.decode([34, 32, 27, 30, 28], { skipSpecialTokens: true }), 'lower low!');
    assert.equal(tok.bosTokenId, 34);
    assert.equal(tok.eosTokenId, 37); // given as an AddedToken object
    assert.equal(tok.padTokenId, 37); // no pad token: falls back to EOS
    assert.equal(tok.vocabSize, 38);
  });

  test('assistant mask covers the content and <|eot_id|>, not the header', async () => {
    const tok = createTokenizer({ tokenizerJson: bpeTokenizerJson(), tokenizerConfig: llamaConfig() });
    const { ids, assistantMask } = tok.encodeChat([
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: ' lower ' }, // the template trims content
    ]);
    const [bos, sh, eh, eot, nn] = [34, 35, 36, 37, 33];
    const c = (s: string) => [...s].map((ch) => ch.charCodeAt(0) - 97); // a=0 .. z=25
    const expected: [number, number][] = [
      [bos, 0], [sh, 0], [20, 0], [18, 0], [31, 0] /* u s er: the "e r" merge */, [eh, 0], [nn, 0], ...c('hi').map((i): [number, number] => [i, 0]), [eot, 0],
      [sh, 0], ...c('assistant').map((i): [number, number] => [i, 0]), [eh, 0], [nn, 0],
      [32, 1], // "lower", one token through the merges
      [eot, 1],
    ];
    assert.deepEqual(ids, expected.map(([i]) => i));
    assert.deepEqual(assistantMask, expected.map(([, m]) => m));
    // The same ids as encoding the rendered string in one piece (without a second BOS).
    const text = tok.applyChatTemplate([
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: ' lower ' },
    ]);
    assert.deepEqual(ids, tok.encode(text, { addSpecialTokens: false }));
  });

  test('generation prompt ends with the assistant header', () => {
    const tok = createTokenizer({ tokenizerJson: bpeTokenizerJson(), tokenizerConfig: llamaConfig() });
    const text = tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true });
    assert.equal(text, '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
    const { ids, assistantMask } = tok.encodeChat([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true });
    // ... <|start_header_id|> a s s i s t a n t <|end_header_id|> "\n\n"
    assert.deepEqual(ids.slice(-12), [35, ...[...'assistant'].map((ch) => ch.charCodeAt(0) - 97), 36, 33]);
    assert.ok(assistantMask.every((m) => m === 0));
  });
});

describe('chat template span detection', () => {
  const special = { eos_token: '<|im_end|>' };
  const conversation = [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: 'q1' },
    { role: 'assistant', content: 'a1' },
    { role: 'user', content: 'q2' },
    { role: 'assistant', content: 'a2 ' },
  ];

  test('content search on ChatML finds content + <|im_end|> for every assistant turn', () => {
    const rendered = new ChatTemplate(CHATML_TEMPLATE, special, 'chatml').renderWithAssistantSpans(conversation);
    assert.equal(rendered.method, 'content-search');
    assert.deepEqual(
      rendered.assistantSpans.map(([s, e]) => rendered.text.slice(s, e)),
      ['a1<|im_end|>', 'a2 <|im_end|>'],
    );
  });

  test('{% generation %} markers give the marked spans, with whitespace control honoured', () => {
    const marked =
      "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' }}{% if m['role'] == 'assistant' %}\n  {%- generation -%}\n  {{ m['content'] + '<|im_end|>' }}\n  {%- endgeneration %}\n{% else %}{{ m['content'] + '<|im_end|>' }}{% endif %}{{ '\\n' }}{% endfor %}";
    const template = new ChatTemplate(marked, special, 'marked');
    const rendered = template.renderWithAssistantSpans(conversation);
    assert.equal(rendered.method, 'generation-markers');
    assert.equal(rendered.text, new ChatTemplate(CHATML_TEMPLATE, special, 'chatml').render(conversation));
    assert.equal(rendered.text, template.render(conversation));
    assert.deepEqual(
      rendered.assistantSpans.map(([s, e]) => rendered.text.slice(s, e)),
      ['a1<|im_end|>', 'a2 <|im_end|>'],
    );
  });

  test('a template that renders earlier turns differently as the conversation grows still works', () => {
    // Renders the message count first and marks only the last assistant turn: no rendering of a shorter
    // conversation is a prefix of the whole one, so only locating by position can work here.
    const growing =
      "{{ messages | length }}{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' }}{% if loop.last %}{{ '[last]' }}{% endif %}{{ m['content'] + '<|im_end|>\\n' }}{% endfor %}";
    const rendered = new ChatTemplate(growing, special, 'growing').renderWithAssistantSpans(conversation);
    assert.deepEqual(rendered.assistantSpans.map(([s, e]) => rendered.text.slice(s, e)), ['a1<|im_end|>', 'a2 <|im_end|>']);
  });

  test('a content that occurs earlier (in a user turn, in a header) is found where its turn is', () => {
    const tricky = [
      { role: 'user', content: 'say ant' },
      { role: 'assistant', content: 'ant' }, // also inside "say ant" and inside the "assistant" header
      { role: 'user', content: 'again' },
      { role: 'assistant', content: 'ant' },
    ];
    const rendered = new ChatTemplate(CHATML_TEMPLATE, special, 'chatml').renderWithAssistantSpans(tricky);
    const text = rendered.text;
    const first = text.indexOf('assistant\nant') + 'assistant\n'.length;
    const second = text.lastIndexOf('assistant\nant') + 'assistant\n'.length;
    assert.deepEqual(rendered.assistantSpans, [
      [first, first + 'ant<|im_end|>'.length],
      [second, second + 'ant<|im_end|>'.length],
    ]);
  });

  test('an assistant turn that cannot be located is refused with advice', () => {
    const dropping = "{% for m in messages %}{% if m['role'] == 'user' %}{{ m['content'] + '<|im_end|>' }}{% endif %}{% endfor %}";
    assert.throws(() => new ChatTemplate(dropping, special, 'cfg "chat_template"').renderWithAssistantSpans(conversation), /cfg "chat_template": messages\[2\] \(assistant\): its content does not appear.*generation/);
    const noEnd = "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}";
    assert.throws(() => new ChatTemplate(noEnd, special, 'T').renderWithAssistantSpans(conversation), /T: messages\[2\] \(assistant\): no end-of-turn special token \("<\|im_end\|>"\) directly follows/);
  });

  test('raise_exception, invalid syntax and bad messages give named errors', () => {
    const strict = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first message must be user') }}{% endif %}";
    assert.throws(() => new ChatTemplate(strict, special, 'T').render(conversation), /T: rendering failed: first message must be user/);
    assert.throws(() => new ChatTemplate('{% for m in messages %}', special, 'T'), /T: invalid chat template/);
    assert.throws(
      () => new ChatTemplate(CHATML_TEMPLATE, special, 'T').render([{ role: 'user', content: 3 as unknown as string }]),
      /"messages\[0\]\.content": must be a string, got 3/,
    );
  });
});

describe('loading errors name the file and key', () => {
  test('missing files', async () => {
    await assert.rejects(loadTokenizer(join(root, 'nothing')), /nothing\/tokenizer\.json: file not found/);
    const dir = await writeDir('no-config', { 'tokenizer.json': bpeTokenizerJson() });
    await assert.rejects(loadTokenizer(dir), /no-config\/tokenizer_config\.json: file not found/);
  });

  test('invalid JSON and model', async () => {
    await assert.rejects(loadTokenizer(await writeDir('bad-json', { 'tokenizer.json': '{"model":', 'tokenizer_config.json': {} })), /tokenizer\.json: invalid JSON/);
    await assert.rejects(loadTokenizer(await writeDir('no-model', { 'tokenizer.json': {}, 'tokenizer_config.json': llamaConfig() })), /tokenizer\.json: "model": must be an object with a string "type"/);
  });

  test('unknown or malformed special tokens', () => {
    const make = (config: Record<string, unknown>, map?: unknown) => () => createTokenizer({ tokenizerJson: bpeTokenizerJson(), tokenizerConfig: config, specialTokensMap: map }, 'm');
    assert.throws(make(llamaConfig({ eos_token: '</s>' })), /m\/tokenizer_config\.json: "eos_token": "<\/s>" is not a token of m\/tokenizer\.json/);
    assert.throws(make(llamaConfig({ pad_token: { id: 3 } })), /"pad_token": must be a string or an AddedToken object/);
    assert.throws(make(llamaConfig({ eos_token: null })), /tokenizer_config\.json: "eos_token": missing/);
    // special_tokens_map.json fills a key the config lacks
    assert.equal(createTokenizer({ tokenizerJson: bpeTokenizerJson(), tokenizerConfig: llamaConfig({ eos_token: null }), specialTokensMap: { eos_token: { content: '<|eot_id|>' } } }).eosTokenId, 37);
    assert.throws(make(llamaConfig({ eos_token: null }), { eos_token: 'nope' }), /m\/special_tokens_map\.json: "eos_token": "nope" is not a token/);
  });

  test('missing and invalid chat templates', async () => {
    const none = createTokenizer({ tokenizerJson: bpeTokenizerJson(), tokenizerConfig: llamaConfig({ chat_template: undefined }) }, 'm');
    assert.deepEqual(none.encode('low', { addSpecialTokens: false }), [30]); // still usable for plain text
    assert.throws(() => none.applyChatTemplate([{ role: 'user', content: 'x' }]), /m\/tokenizer_config\.json: "chat_template": no chat template/);
    assert.throws(() => createTokenizer({ tokenizerJson: bpeTokenizerJson(), tokenizerConfig: llamaConfig({ chat_template: 42 }) }), /"chat_template": must be a string or a list/);
    assert.throws(() => createTokenizer({ tokenizerJson: bpeTokenizerJson(), tokenizerConfig: llamaConfig({ chat_template: '{{ x ' }) }), /"chat_template": invalid chat template/);
    const named = createTokenizer({ tokenizerJson: bpeTokenizerJson(), tokenizerConfig: llamaConfig({ chat_template: [{ name: 'tool_use', template: 'T' }, { name: 'default', template: 'D' }] }) });
    assert.equal(named.applyChatTemplate([]), 'D');
    // chat_template.jinja beside the config is used when the config has none
    const dir = await writeDir('jinja-file', { 'tokenizer.json': bpeTokenizerJson(), 'tokenizer_config.json': llamaConfig({ chat_template: undefined }), 'chat_template.jinja': 'J{{ messages | length }}' });
    assert.equal((await loadTokenizer(dir)).applyChatTemplate([{ role: 'user', content: 'x' }]), 'J1');
  });
});
