import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, defineConfig, describeConfig, parseConfig, parseSeeds } from './flags';

const schema = defineConfig({
  host: { kind: 'string', flag: 'host', env: 'X_HOST', description: 'address to bind', default: '127.0.0.1' },
  port: { kind: 'int', flag: 'port', env: 'X_PORT', description: 'port', default: 50051, min: 0, max: 65535 },
  model: { kind: 'string', flag: 'model', env: 'X_MODEL', description: 'model directory', required: true },
  verbose: { kind: 'bool', flag: 'verbose', description: 'more logs', default: false },
  ratio: { kind: 'number', flag: 'ratio', description: 'a ratio', min: 0, max: 1 },
  peers: { kind: 'list', flag: 'peers', description: 'addresses', default: [] as string[] },
  mode: { kind: 'string', flag: 'mode', description: 'mode', default: 'a', choices: ['a', 'b'] },
});

describe('parseConfig', () => {
  test('flag beats env beats default, and values get their types', () => {
    const c = parseConfig(schema, { argv: ['--port', '7000', '--model=/m', '--verbose', '--peers', 'a:1, b:2'], env: { X_PORT: '6000', X_HOST: '0.0.0.0' } });
    assert.deepEqual(c, { host: '0.0.0.0', port: 7000, model: '/m', verbose: true, peers: ['a:1', 'b:2'], mode: 'a' });
    assert.equal(parseConfig(schema, { env: { X_MODEL: '/e' }, argv: ['--no-verbose'] }).verbose, false);
  });

  test('errors name the flag or variable, the value and what was expected', () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['--port', 'abc', '--model', 'm'], {}, /--port: got "abc", expected an integer/],
      [['--port', '70000', '--model', 'm'], {}, /--port: got "70000", expected a value <= 65535/],
      [['--model', 'm'], { X_PORT: '1.5' }, /environment variable X_PORT: got "1.5", expected an integer/],
      [[], {}, /missing required option --model \(or X_MODEL\): model directory/],
      [['--model', 'm', '--prot', '1'], {}, /unknown option --prot; options are --host, --port/],
      [['--model', 'm', 'stray'], {}, /unexpected argument "stray"/],
      [['--model', 'm', '--mode', 'c'], {}, /--mode: got "c", expected one of a, b/],
      [['--model', 'm', '--ratio', '2'], {}, /--ratio: got "2", expected a value <= 1/],
      [['--model'], {}, /--model: missing value/],
      [['--model', 'm', '--verbose=maybe'], {}, /--verbose: got "maybe", expected true or false/],
    ];
    for (const [argv, env, re] of cases) assert.throws(() => parseConfig(schema, { argv, env }), (e: Error) => e instanceof ConfigError && re.test(e.message), `${argv.join(' ')} should fail with ${re}`);
  });

  test('describeConfig lists every option with its env var and default', () => {
    const text = describeConfig(schema);
    assert.match(text, /--port <int>\s+port \(env X_PORT; default 50051\)/);
    assert.match(text, /--model <string>\s+model directory \(env X_MODEL; required\)/);
  });
});

describe('parseSeeds', () => {
  test('integers in [0, 2^32), each once, in the order given', () => {
    assert.deepEqual(parseSeeds(['0', '1', '2']), [0, 1, 2]);
    assert.deepEqual(parseSeeds(['4294967295', '7']), [4294967295, 7]);
  });
  test('bad lists are ConfigErrors naming the flag, the index and the value', () => {
    assert.throws(() => parseSeeds([]), (e: unknown) => e instanceof ConfigError && /--seeds: got an empty list/.test(e.message));
    assert.throws(() => parseSeeds(['0', '-1']), /--seeds\[1\]: got "-1", expected an integer in \[0, 4294967295\]/);
    assert.throws(() => parseSeeds(['1.5']), /--seeds\[0\]: got "1.5"/);
    assert.throws(() => parseSeeds(['4294967296']), /--seeds\[0\]: got "4294967296"/);
    assert.throws(() => parseSeeds(['3', '3']), /--seeds\[1\]: got 3 again, expected each seed once/);
    assert.throws(() => parseSeeds(['x'], '--grpo-seeds'), /--grpo-seeds\[0\]: got "x"/);
  });
});
