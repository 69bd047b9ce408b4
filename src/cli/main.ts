/**
 * The `relprop` command line. Each command lives in its own file; this one wires them up and turns
 * errors into one readable line on stderr and a non-zero exit code.
 */
import { Command, CommanderError } from 'commander';
import { RelpropError } from '../core/errors.js';
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
  try {
    await program.parseAsync([...argv]);
    // A command that ends without an error but not in success (compare interrupted: 130) sets process.exitCode.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed the message (or the help text, whose exit code is 0).
      return err.exitCode;
    }
    if (err instanceof RelpropError) {
      process.stderr.write(`relprop: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`relprop: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}
