/**
 * The `relprop` command line. Each command lives in its own file; this one wires them up and turns
 * errors into one readable line on stderr and a non-zero exit code.
 */
import { Command, CommanderError } from 'commander';
import { RelpropError, systemErrorReason } from '../core/errors.js';
import { relpropVersion } from '../core/provenance.js';
import { explainCommand } from './explain.js';
import { trainCommand } from './train.js';
import { compareCommand, mergeCommand } from './compare.js';
import { serveCommand } from './serve.js';

export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command()
    .name('relprop')
    .description('Explain transformer predictions by relevance propagation (Chefer, Gur & Wolf, CVPR 2021) and the methods it is compared with.')
    .version(relpropVersion().version)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
  program.addCommand(explainCommand());
  program.addCommand(trainCommand());
  program.addCommand(compareCommand());
  program.addCommand(mergeCommand());
  program.addCommand(serveCommand());
  // Subcommands added with addCommand do not inherit these: without them an unknown option would
  // exit from inside Commander, with its own exit code.
  for (const cmd of program.commands) cmd.exitOverride().configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
  try {
    await program.parseAsync([...argv]);
    // A command that ends without an error but not in success (compare interrupted: 130) sets process.exitCode.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed the message (or the help text, whose exit code is 0). A command
      // line that cannot be parsed (unknown option, bad option value) is exit code 2.
      return err.exitCode === 0 ? 0 : 2;
    }
    process.stderr.write(errorText(err));
    return 1;
  }
}

/**
 * One line for the terminal: the message of a RelpropError as it is, a system error (EACCES on a
 * path) in words, anything else as "unexpected error"; the stack only with RELPROP_DEBUG=1.
 */
export function errorText(err: unknown): string {
  const debug = process.env['RELPROP_DEBUG'] === '1';
  const stack = debug && err instanceof Error && err.stack ? `\n${err.stack}` : '';
  if (err instanceof RelpropError) return `relprop: ${oneLine(err.message)}${stack}\n`;
  const e = err as NodeJS.ErrnoException | undefined;
  const reason = systemErrorReason(err);
  if (reason && e?.path) return `relprop: ${e.path}: ${reason}${e.syscall ? ` (${e.syscall})` : ''}${stack}\n`;
  const message = err instanceof Error ? err.message : String(err);
  return `relprop: unexpected error: ${oneLine(message)}${stack || (debug ? '' : ' (RELPROP_DEBUG=1 shows where)')}\n`;
}

function oneLine(message: string): string {
  // A multi-line message keeps its lines, but no line may look like a stack frame.
  return message.split('\n').filter((l) => !/^\s+at /.test(l)).join('\n');
}
