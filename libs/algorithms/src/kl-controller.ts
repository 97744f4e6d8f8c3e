/**
 * KL coefficient controllers for the PPO-RLHF reward penalty, with plain-JSON
 * state for checkpoints.
 *
 * Adaptive (Ziegler et al. 2019, "Fine-Tuning Language Models from Human
 * Preferences", Sec. 2.2; TRL AdaptiveKLController):
 *   e   = clip(KL / KL_target - 1, -0.2, 0.2)
 *   beta <- beta (1 + e * nSteps / horizon)
 * so beta rises when the policy drifts past the target KL and falls below it.
 */
import { assertNumber } from './shape-checks';

export type KlControllerState =
  | { readonly kind: 'fixed'; readonly value: number }
  | { readonly kind: 'adaptive'; readonly value: number; readonly target: number; readonly horizon: number };

export interface KlController {
  /** The current coefficient beta. */
  readonly value: number;
  /** Updates beta from the KL measured over the last `nSteps` samples (no-op for a fixed controller). */
  update(currentKl: number, nSteps: number): void;
  getState(): KlControllerState;
}

/** A constant beta. */
export class FixedKlController implements KlController {
  readonly value: number;
  constructor(value: number) {
    assertNumber('FixedKlController', 'value', value, { min: 0 });
    this.value = value;
  }
  update(currentKl: number, nSteps: number): void {
    assertNumber('FixedKlController.update', 'currentKl', currentKl);
    assertNumber('FixedKlController.update', 'nSteps', nSteps, { min: 0 });
  }
  getState(): KlControllerState {
    return { kind: 'fixed', value: this.value };
  }
}

/** Proportional controller towards a target KL. */
export class AdaptiveKlController implements KlController {
  private current: number;
  readonly target: number;
  readonly horizon: number;
  /**
   * @param initValue starting beta, > 0 (it only scales multiplicatively, so 0 would stick).
   * @param target    target KL per sequence, > 0 (Ziegler et al.: 6 nats; TRL: 6).
   * @param horizon   number of samples over which an error of 0.2 changes beta by 20% (TRL: 10000).
   */
  constructor(initValue: number, target: number, horizon: number) {
    assertNumber('AdaptiveKlController', 'initValue', initValue, { minExclusive: 0 });
    assertNumber('AdaptiveKlController', 'target', target, { minExclusive: 0 });
    assertNumber('AdaptiveKlController', 'horizon', horizon, { minExclusive: 0 });
    this.current = initValue;
    this.target = target;
    this.horizon = horizon;
  }
  get value(): number {
    return this.current;
  }
  update(currentKl: number, nSteps: number): void {
    assertNumber('AdaptiveKlController.update', 'currentKl', currentKl);
    assertNumber('AdaptiveKlController.update', 'nSteps', nSteps, { min: 0 });
    const proportionalError = Math.min(Math.max(currentKl / this.target - 1, -0.2), 0.2);
    this.current *= 1 + (proportionalError * nSteps) / this.horizon;
  }
  getState(): KlControllerState {
    return { kind: 'adaptive', value: this.current, target: this.target, horizon: this.horizon };
  }
}

/** Rebuilds a controller from `getState()` output, validating every field. */
export function klControllerFromState(state: unknown): KlController {
  const where = 'kl controller state';
  if (typeof state !== 'object' || state === null || Array.isArray(state)) {
    throw new Error(`${where}: expected an object with "kind", got ${JSON.stringify(state)}`);
  }
  const s = state as Record<string, unknown>;
  const allowed = s.kind === 'fixed' ? ['kind', 'value'] : ['kind', 'value', 'target', 'horizon'];
  for (const key of Object.keys(s)) {
    if (!allowed.includes(key)) throw new Error(`${where}: unknown field "${key}" for kind ${JSON.stringify(s.kind)}; expected ${allowed.join(', ')}`);
  }
  if (s.kind === 'fixed') {
    assertNumber(where, 'value', s.value, { min: 0 });
    return new FixedKlController(s.value);
  }
  if (s.kind === 'adaptive') {
    assertNumber(where, 'value', s.value, { minExclusive: 0 });
    assertNumber(where, 'target', s.target, { minExclusive: 0 });
    assertNumber(where, 'horizon', s.horizon, { minExclusive: 0 });
    return new AdaptiveKlController(s.value, s.target, s.horizon);
  }
  throw new Error(`${where}.kind: expected "fixed" or "adaptive", got ${JSON.stringify(s.kind)}`);
}
