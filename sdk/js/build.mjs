#!/usr/bin/env node
// Build a graft plugin from JavaScript with componentize-js:
//
//   node build.mjs --wit wit --world processor-plugin app.js -o plugin.wasm
//
// `--world` is one of input-plugin, processor-plugin, aggregator-plugin,
// output-plugin. The plugin imports nothing from WASI that graft would have
// to grant: http and the fetch event are left out.
//
// componentize-js reads modules only below the source's folder, so the
// folder is copied to a scratch directory first, with this SDK's
// graft-sdk.js added when the plugin does not carry its own copy; the
// source then imports it as './graft-sdk.js'.
import { componentize } from '@bytecodealliance/componentize-js';
import { cp, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    wit: { type: 'string', default: 'wit' },
    world: { type: 'string' },
    out: { type: 'string', short: 'o' },
  },
});
if (!values.world || !values.out || positionals.length !== 1) {
  console.error('usage: node build.mjs --wit DIR --world KIND-plugin SOURCE.js -o OUT.wasm');
  process.exit(2);
}
const source = resolve(positionals[0]);
const scratch = await mkdtemp(join(tmpdir(), 'graft-js-'));
let component;
try {
  await cp(dirname(source), scratch, {
    recursive: true,
    filter: (path) => !['node_modules', '.git', 'target'].includes(basename(path)),
  });
  const sdk = join(scratch, 'graft-sdk.js');
  if (!(await stat(sdk).catch(() => null))) {
    await cp(join(dirname(fileURLToPath(import.meta.url)), 'graft-sdk.js'), sdk);
  }
  ({ component } = await componentize({
    sourcePath: join(scratch, basename(source)),
    witPath: resolve(values.wit),
    worldName: values.world,
    disableFeatures: ['http', 'fetch-event'],
  }));
} finally {
  await rm(scratch, { recursive: true, force: true });
}
await writeFile(values.out, component);
console.log(`wrote ${values.out} (${(component.length / 1048576).toFixed(1)} MiB)`);
