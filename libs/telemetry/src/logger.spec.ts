import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, parseLogLevel } from './logger';

describe('createLogger', () => {
  test('writes one JSON object per record with service, level, msg and fields', () => {
    const lines: string[] = [];
    const log = createLogger({ service: 'svc', level: 'info', sink: (l) => lines.push(l) });
    log.info('hello', { n: 3 });
    log.debug('dropped below level');
    createLogger({ service: 'svc', level: 'error', sink: (l) => lines.push(l) }).lifecycle('listening', { port: 1 });
    assert.equal(JSON.parse(lines.pop()!).msg, 'listening', 'lifecycle records pass any threshold but silent');
    createLogger({ service: 'svc', level: 'silent', sink: (l) => lines.push(l) }).lifecycle('listening');
    log.child({ request: 'r1' }).warn('careful', { err: new Error('boom') });
    assert.equal(lines.length, 2);
    const a = JSON.parse(lines[0]);
    assert.equal(a.service, 'svc');
    assert.equal(a.level, 'info');
    assert.equal(a.msg, 'hello');
    assert.equal(a.n, 3);
    assert.ok(!Number.isNaN(Date.parse(a.ts)));
    const b = JSON.parse(lines[1]);
    assert.equal(b.request, 'r1');
    assert.equal(b.err.message, 'boom');
    assert.equal(b.err.name, 'Error');
  });

  test('rejects an unknown level naming the value and the choices', () => {
    assert.throws(() => parseLogLevel('loud', 'POSTTRAIN_LOG_LEVEL'), /POSTTRAIN_LOG_LEVEL: got "loud", expected one of debug, info, warn, error, silent/);
    assert.equal(parseLogLevel(' WARN '), 'warn');
  });
});
