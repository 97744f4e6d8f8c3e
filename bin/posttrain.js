#!/usr/bin/env node
// The `posttrain` command. The project runs its TypeScript sources through
// tsx (CommonJS), so the CLI and the services it starts need no build step.
require('tsx/cjs');
require('../libs/cli/src/index.ts').main();
