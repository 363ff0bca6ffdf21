// Print `pipegen validate --format json` diagnostics (read from stdin) as @actions/core prints
// annotations, so tests can compare pipegen's `--format github` with GitHub's own toolkit.
import * as core from '@actions/core';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const doc = JSON.parse(Buffer.concat(chunks).toString('utf8'));
for (const d of doc.diagnostics) {
  const annotate = d.severity === 'error' ? core.error : core.warning;
  annotate(`${d.message}; hint: ${d.hint}`, {
    title: `pipegen ${d.code}`,
    file: d.file,
    startLine: d.line,
    startColumn: d.column,
  });
}
