/**
 * `parry schema`: prints the JSON Schema of `parry evaluate --config` files (editors use it to
 * complete and check configs). Generated from the zod schemas that parse a config, so every
 * attack's `params` list exactly the options that attack reads.
 */
import { Command } from 'commander';
import { evaluateConfigJsonSchema } from '../evaluate/config.js';

export function schemaCommand(): Command {
  return new Command('schema')
    .description('print the JSON Schema of evaluate config files')
    .action(() => {
      process.stdout.write(`${JSON.stringify(evaluateConfigJsonSchema(), null, 2)}\n`);
    });
}
