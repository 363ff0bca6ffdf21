// Evaluate JSONata expressions with the reference implementation (the language Step Functions runs).
// stdin: [{"expr": "...", "bindings": {...}}, ...]  stdout: [{"value": ...} | {"error": "..."}, ...]
import jsonata from "jsonata";

let text = "";
for await (const chunk of process.stdin) text += chunk;
const results = [];
for (const { expr, bindings } of JSON.parse(text)) {
  try {
    const value = await jsonata(expr).evaluate({}, bindings ?? {});
    results.push({ value: value === undefined ? null : value });
  } catch (error) {
    results.push({ error: `${error.code ?? ""} ${error.message}` });
  }
}
process.stdout.write(JSON.stringify(results));
