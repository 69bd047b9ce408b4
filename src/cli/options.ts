/** Option parsers shared by commands: each rejects a bad value with a message naming the option. */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { optionValueProblem, rangeText, type OptionSchema, type OptionSpec } from '../core/methods/options.js';

export function integer(name: string, min = 0, max?: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) {
      throw new InvalidArgumentError(`${name} must be ${rangeText('integer', min, max)}, got '${value}'`);
    }
    return n;
  };
}

/** A finite number between `min` and `max` (noise levels). */
export function number(name: string, min: number, max = Infinity) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be ${rangeText('number', min, max)}, got '${value}'`);
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

/**
 * A method option's flag, as the schema (core/methods/options.ts) defines it: its help line and a
 * parser that refuses what the schema's range refuses. The text is read as its kind, then checked by
 * the schema's own check, the one the app's IPC validation applies.
 */
export function methodOptionFlag(spec: OptionSpec): Option {
  const option = new Option(`${spec.flag} ${spec.arg}`, spec.help);
  const checked =
    <T>(read: (value: string) => T) =>
    (value: string): T => {
      const v = read(value);
      const problem = optionValueProblem(spec, v, []);
      if (problem) throw new InvalidArgumentError(`${spec.flag} ${problem}, got '${value}'`);
      return v;
    };
  switch (spec.kind) {
    case 'integer':
      return option.argParser(checked((value) => (/^-?\d+$/.test(value.trim()) ? Number(value) : Number.NaN)));
    case 'number':
      return option.argParser(checked((value) => (value.trim() === '' ? Number.NaN : Number(value))));
    case 'boolean':
      return option.argParser(checked((value): boolean | string => (value === 'true' ? true : value === 'false' ? false : value)));
    case 'enum':
      return option.choices(spec.values);
    case 'ruleSet':
      // Checked against the rule-set registry with the method, before anything is loaded.
      return option;
  }
}

/** Adds the flags of the schema's options (all, or those named), in the schema's order. */
export function addMethodOptionFlags(command: Command, schema: OptionSchema, names: readonly string[] = Object.keys(schema)): Command {
  for (const name of names) command.addOption(methodOptionFlag(schema[name]!));
  return command;
}
