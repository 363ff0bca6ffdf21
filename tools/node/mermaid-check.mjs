// Parse each FILE with the real mermaid library (jsdom supplies the DOM); exit 1 and print "FILE: error" for any that fail.
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node mermaid-check.mjs FILE...');
  process.exit(2);
}

// mermaid's DOMPurify needs a window at import time, so set the globals before loading mermaid.
const { window } = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = window;
globalThis.document = window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });

let failed = 0;
for (const file of files) {
  try {
    await mermaid.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    failed++;
    console.error(`${file}: ${err?.message ?? err}`);
  }
}
process.exit(failed ? 1 : 0);
