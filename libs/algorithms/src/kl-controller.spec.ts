import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AdaptiveKlController, FixedKlController, klControllerFromState } from './kl-controller';
import { assertClose } from './spec-helpers';

describe('KL controllers', () => {
  test('adaptive: proportional error clipped to +-0.2, beta *= 1 + e n / horizon (by hand)', () => {
    const c = new AdaptiveKlController(0.1, 6, 10000);
    c.update(12, 256); // e = clip(12/6 - 1) = clip(1) = 0.2 -> 0.1 * (1 + 0.2 * 0.0256)
    assertClose(c.value, 0.1 * 1.00512, 1e-15, 'after KL above target');
    c.update(5.4, 256); // e = 5.4/6 - 1 = -0.1 -> * (1 - 0.00256)
    assertClose(c.value, 0.1 * 1.00512 * 0.99744, 1e-15, 'after KL a bit below');
    c.update(0, 10000); // e = -1 clipped to -0.2 -> * 0.8
    assertClose(c.value, 0.1 * 1.00512 * 0.99744 * 0.8, 1e-15, 'after KL 0 over a full horizon');
    c.update(6, 1000); // e = 0: unchanged
    assertClose(c.value, 0.1 * 1.00512 * 0.99744 * 0.8, 1e-15, 'at target');
  });

  test('state round-trips through JSON and the restored controller continues identically', () => {
    const a = new AdaptiveKlController(0.2, 4, 5000);
    a.update(7, 64);
    const b = klControllerFromState(JSON.parse(JSON.stringify(a.getState())));
    a.update(3, 128);
    b.update(3, 128);
    assert.equal(b.value, a.value);
    assert.deepEqual(b.getState(), a.getState());
    const f = klControllerFromState({ kind: 'fixed', value: 0.05 });
    f.update(100, 1000);
    assert.equal(f.value, 0.05);
    assert.deepEqual(new FixedKlController(0.05).getState(), { kind: 'fixed', value: 0.05 });
  });

  test('invalid states and arguments name the field and the value', () => {
    assert.throws(() => klControllerFromState({ kind: 'pid', value: 1 }), /kl controller state\.kind: expected "fixed" or "adaptive", got "pid"/);
    assert.throws(() => klControllerFromState({ kind: 'adaptive', value: 0.1, target: 0, horizon: 1 }), /target must be a finite number > 0, got 0/);
    assert.throws(() => klControllerFromState({ kind: 'adaptive', value: 0.1, target: 6 }), /horizon must be a finite number > 0, got undefined/);
    assert.throws(() => klControllerFromState({ kind: 'fixed', value: 0.1, target: 6 }), /unknown field "target"/);
    assert.throws(() => klControllerFromState(null), /expected an object/);
    assert.throws(() => new FixedKlController(-1), /value must be a finite number >= 0, got -1/);
    assert.throws(() => new AdaptiveKlController(0.1, 6, 1000).update(NaN, 1), /currentKl must be a finite number, got NaN/);
  });
});
