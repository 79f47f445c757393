#!/usr/bin/env node
// FlowNet's solc: a native-solc-compatible command line over the npm `solc` package (solcjs).
// Used by forge (`solc = "tools/solc"` in foundry.toml) and by py-solc-x (flownet/chain/compile.py).
// Supports `--version` and `--standard-json` (input on stdin), which is all both callers need.
// Import paths are resolved against --base-path, then each --include-path, then node_modules.
// Output goes to the file named by FLOWNET_SOLC_OUT (tools/solc then prints it), because node cuts
// stdout written to a pipe at ~64 KiB when the process exits.
"use strict";
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
const solc = require(path.join(root, "node_modules", "solc"));

function usage(code) {
  process.stderr.write(
    "usage: solc --version | solc --standard-json [--base-path DIR] [--include-path DIR]... < input.json\n",
  );
  process.exit(code);
}

function parseArgs(argv) {
  const opts = { version: false, standardJson: false, basePath: process.cwd(), includePaths: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const takeValue = () => {
      if (arg.includes("=")) return arg.slice(arg.indexOf("=") + 1);
      if (i + 1 >= argv.length) {
        process.stderr.write(`solc wrapper: ${arg} needs a value\n`);
        usage(2);
      }
      return argv[++i];
    };
    if (arg === "--version" || arg === "-v") opts.version = true;
    else if (arg === "--standard-json") opts.standardJson = true;
    else if (arg.startsWith("--base-path")) opts.basePath = takeValue();
    else if (arg.startsWith("--include-path")) opts.includePaths.push(takeValue());
    // solcjs has no notion of allowed paths; imports are confined by findImports below instead.
    else if (arg.startsWith("--allow-paths")) takeValue();
    else if (arg === "--help" || arg === "-h") usage(0);
    else {
      process.stderr.write(`solc wrapper: unsupported argument ${JSON.stringify(arg)} (only --version and --standard-json work)\n`);
      usage(2);
    }
  }
  return opts;
}

function emit(text) {
  const out = process.env.FLOWNET_SOLC_OUT;
  if (out) fs.writeFileSync(out, text);
  else fs.writeSync(1, text);
}

const opts = parseArgs(process.argv.slice(2));
if (opts.version) {
  emit(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}
if (!opts.standardJson) usage(2);

const searchRoots = [opts.basePath, ...opts.includePaths, path.join(root, "node_modules"), root].map((p) =>
  path.resolve(p),
);

function findImports(importPath) {
  const candidates = path.isAbsolute(importPath) ? [importPath] : searchRoots.map((r) => path.join(r, importPath));
  for (const candidate of candidates) {
    try {
      return { contents: fs.readFileSync(candidate, "utf8") };
    } catch (_) {
      // try the next root
    }
  }
  return { error: `File not found: ${importPath} (searched ${searchRoots.join(", ")})` };
}

const input = fs.readFileSync(0, "utf8");
emit(solc.compile(input, { import: findImports }));
