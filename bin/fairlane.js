#!/usr/bin/env node
// The `fairlane` command (package.json "bin"; `npx fairlane <command>` from a checkout after npm install).
// From a checkout it runs the TypeScript source through tsx (a devDependency), so it is never an
// older build than the code beside it; without tsx or the source (an install without dev
// dependencies, the image) it runs the compiled CLI of `npm run build`, dist/src/cli/index.js.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const source = `${root}src/cli/index.ts`;
const compiled = `${root}dist/src/cli/index.js`;

function tsxApi() {
  try {
    return import.meta.resolve("tsx/esm/api");
  } catch {
    return undefined;
  }
}

const api = existsSync(source) ? tsxApi() : undefined;
if (api) {
  const { register } = await import(api);
  register();
  await import(pathToFileURL(source).href);
} else if (existsSync(compiled)) {
  await import(pathToFileURL(compiled).href);
} else {
  process.stderr.write(`fairlane: neither tsx (npm install) nor a build (npm run build, ${compiled}) is there to run the CLI\n`);
  process.exit(1);
}
