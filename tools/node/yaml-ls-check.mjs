// Validate YAML files with yaml-language-server's own language service, as an editor does: each document's schema
// comes from its `# yaml-language-server: $schema=...` modeline (a path relative to the file) and is read from disk.
// usage: node yaml-ls-check.mjs [--yaml-version 1.1|1.2] [--at LINE:COLUMN] FILE...
//   --yaml-version: how plain scalars read (`yes` is a boolean in 1.1); 1.2 is the editor's default.
//   --at: also report the completion labels and the hover text at that 1-based position of each file.
// stdout: [{"file", "documents": [{"schema": uri, "draft": "2020-12"}, ...], "diagnostics": [{"file", "line",
//   "column", "end_line", "end_column", "severity", "source", "code", "message"}, ...]}, ...]  (1-based positions)
// Exit 0 when every document was validated against its schema: the diagnostics are data. Exit 1, saying why on
// stderr, when a document has no schema, a schema cannot be loaded or resolved, or validation itself failed, so a
// check built on this tool cannot pass by validating nothing. Exit 2 on usage errors.
import { readFileSync, promises as fs } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { getLanguageService } from 'yaml-language-server';
import { ErrorCode, SchemaDraft } from 'yaml-language-server/out/src/languageservice/jsonLanguageTypes.js';
import { yamlDocumentsCache } from 'yaml-language-server/out/src/languageservice/parser/yaml-documents.js';
import { workspaceContext } from 'yaml-language-server/out/src/languageservice/services/schemaRequestHandler.js';
import { YAMLSchemaService } from 'yaml-language-server/out/src/languageservice/services/yamlSchemaService.js';

const SEVERITY = { 1: 'error', 2: 'warning', 3: 'information', 4: 'hint' };
// The dialect yaml-language-server picked from the schema's $schema (it validates with that draft's validator).
const DRAFT = {
  [SchemaDraft.v4]: '4',
  [SchemaDraft.v7]: '7',
  [SchemaDraft.v2019_09]: '2019-09',
  [SchemaDraft.v2020_12]: '2020-12',
};

const USAGE = 'usage: node yaml-ls-check.mjs [--yaml-version 1.1|1.2] [--at LINE:COLUMN] FILE...';
const args = process.argv.slice(2);
let yamlVersion = '1.2';
let at = null;
while (args[0]?.startsWith('--')) {
  const [option, value] = args.splice(0, 2);
  if (option === '--yaml-version' && ['1.1', '1.2'].includes(value)) {
    yamlVersion = value;
  } else if (option === '--at' && /^\d+:\d+$/.test(value ?? '')) {
    const [line, column] = value.split(':').map(Number);
    at = { line: line - 1, character: column - 1 };
  } else {
    args.length = 0;
  }
}
if (args.length === 0) {
  console.error(USAGE);
  process.exit(2);
}

// What the run found wrong with itself (not with the files): any of it fails the run.
const failures = [];

// The editor's schema request service, for local files only: a schema that needs the network fails the run.
function schemaRequestService(file) {
  return async (uri) => {
    if (!uri.startsWith('file:')) {
      failures.push(`${file}: schema ${uri} is not a local file`);
      throw new Error(`not a local file: ${uri}`);
    }
    try {
      return await fs.readFile(fileURLToPath(uri), 'utf8');
    } catch (error) {
      failures.push(`${file}: cannot read schema ${uri}: ${error.message}`);
      throw error;
    }
  };
}

function telemetry(file) {
  return {
    send() {},
    sendTrack() {},
    // The language service reports its own crashes here and carries on with fewer diagnostics.
    sendError(name, error) {
      failures.push(`${file}: yaml-language-server failed (${name}): ${error?.stack ?? error}`);
    },
  };
}

async function check(file) {
  const text = readFileSync(file, 'utf8');
  const uri = pathToFileURL(resolve(file)).toString();
  const document = TextDocument.create(uri, 'yaml', 1, text);
  // A fresh service per file, so each file loads its schema itself (nothing cached from an earlier file).
  const requests = schemaRequestService(file);
  const service = getLanguageService({ schemaRequestService: requests, workspaceContext, telemetry: telemetry(file) });
  service.configure({ validate: true, hover: true, completion: true, yamlVersion, customTags: [] });
  const found = await service.doValidation(document, false);

  // Which schema the editor applies to each YAML document of the file, and whether it resolves cleanly.
  const schemas = new YAMLSchemaService(requests, workspaceContext);
  const documents = [];
  const parsed = yamlDocumentsCache.getYamlDocument(document, { customTags: [], yamlVersion }, true);
  for (const [index, single] of parsed.documents.entries()) {
    single.currentDocIndex = index;
    const resolved = await schemas.getSchemaForResource(uri, single);
    if (!resolved) {
      failures.push(`${file}: document ${index + 1} has no schema (no yaml-language-server modeline heads it)`);
      documents.push({ schema: null, draft: null });
      continue;
    }
    for (const error of resolved.errors) failures.push(`${file}: schema problem: ${error.message}`);
    const draft = resolved.schemaDraft ?? resolved.schema._schemaDraft;
    documents.push({ schema: resolved.schema.url, draft: DRAFT[draft] ?? null });
  }

  const diagnostics = found.map((d) => ({
    file,
    line: d.range.start.line + 1,
    column: d.range.start.character + 1,
    end_line: d.range.end.line + 1,
    end_column: d.range.end.character + 1,
    severity: SEVERITY[d.severity] ?? String(d.severity),
    source: d.source ?? null,
    code: d.code ?? null,
    message: d.message,
  }));
  for (const d of diagnostics) {
    // The editor shows a schema it cannot load, resolve or compile as one warning and then validates nothing.
    if ((typeof d.code === 'number' && d.code >= ErrorCode.SchemaResolveError) || d.message.startsWith('Invalid pattern')) {
      failures.push(`${file}:${d.line}:${d.column}: schema not usable: ${d.message}`);
    }
  }
  const result = { file, documents, diagnostics };
  if (at) {
    // What the editor offers and shows at a position: completion labels (once each) and the hover text.
    const completion = await service.doComplete(document, at, false);
    result.completions = [...new Set(completion.items.map((item) => item.label))];
    const hover = await service.doHover(document, at);
    result.hover = hover ? hover.contents.value ?? String(hover.contents) : null;
  }
  return result;
}

const results = [];
for (const file of args) {
  try {
    results.push(await check(file));
  } catch (error) {
    // e.g. yaml-language-server 2.0.0 throws while reporting a schema that fails its meta-schema.
    failures.push(`${file}: ${error?.stack ?? error}`);
  }
}

process.stdout.write(JSON.stringify(results, null, 1) + '\n');
for (const failure of failures) console.error(failure);
process.exit(failures.length ? 1 : 0);
