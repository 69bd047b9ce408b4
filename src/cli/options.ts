/** Option parsers shared by commands: each rejects a bad value with a message naming the option. */
import { InvalidArgumentError } from 'commander';

export function integer(name: string, min = 0) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got '${value}'`);
    }
    return n;
  };
}

/** A finite number between `min` and `max` (noise levels). */
export function number(name: string, min: number, max = Infinity) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be a number${max === Infinity ? ` ≥ ${min}` : ` from ${min} to ${max}`}, got '${value}'`);
    }
    return n;
  };
}

/** 'true' or 'false' (SmoothGrad's --abs). */
export function boolean(name: string) {
  return (value: string): boolean => {
    if (value === 'true' || value === 'false') return value === 'true';
    throw new InvalidArgumentError(`${name} must be true or false, got '${value}'`);
  };
}
