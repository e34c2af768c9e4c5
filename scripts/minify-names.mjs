// Shortens the names the wasm and its JavaScript glue use for each other.
//
// wasm-bindgen names every import `__wbg_<name>_<16 hex digits>`, under the
// module "./provider_sync_sdk_bg.js", and exports long names; both sides
// spell all of them out, and the hashes do not compress. wasm-opt's
// --minify-imports-and-exports-and-modules renames them in the wasm and
// prints the mapping; this script applies the same mapping to the glue and
// to the declarations of the raw exports (InitOutput). It refuses to leave a
// name behind: every import the glue provides and every export it reads must
// be in the mapping, and every name in the mapping must be found, so a
// wasm-bindgen that writes its glue differently stops the build instead of
// shipping a package that cannot load.
//
//   node scripts/minify-names.mjs MAP.json PKG_DIR
import fs from "node:fs";
import path from "node:path";

const [mapFile, dir] = process.argv.slice(2);
const map = JSON.parse(fs.readFileSync(mapFile, "utf8"));
const fail = (message) => {
  console.error(`minify-names: ${message}`);
  process.exit(1);
};

const wasm = fs.readFileSync(path.join(dir, "provider_sync_sdk_bg.wasm"));
const modules = new Set(WebAssembly.Module.imports(new WebAssembly.Module(wasm)).map((i) => i.module));
if (modules.size !== 1) fail(`expected one import module, found ${[...modules].join(", ")}`);
const [module] = modules;
// wasm-bindgen's own module, and the SDK's JavaScript snippets (sdk/js/),
// which wasm-opt merges into the one module: what the wasm imports from a
// snippet is then provided under its short name by the glue's own import
// object (`import0.d = import1.idbClosed`).
const mainModule = "./provider_sync_sdk_bg.js";
const oldModules = new Set(map.imports.map(([m]) => m));
if (!oldModules.has(mainModule)) fail(`no imports from ${mainModule}`);
for (const m of oldModules) {
  if (m !== mainModule && !m.startsWith("./snippets/")) fail(`imports from an unknown module ${m}`);
}
const oldModule = mainModule;

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const ident = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function rewrite(file, edits) {
  let text = fs.readFileSync(file, "utf8");
  for (const [pattern, replacement, what] of edits) {
    const next = text.replace(pattern, replacement);
    if (next === text) fail(`${path.basename(file)}: ${what} not found`);
    text = next;
  }
  fs.writeFileSync(file, text);
  return text;
}

// The glue: the import object's keys, its module name, and `wasm.<export>`.
const glue = path.join(dir, "provider_sync_sdk.js");
const edits = [];
const fromSnippets = new Map();
for (const [from_module, from, to] of map.imports) {
  if (!ident.test(to)) fail(`import ${from} renamed to ${to}, not a JavaScript name`);
  if (from_module !== mainModule) {
    if (!fromSnippets.has(from_module)) fromSnippets.set(from_module, []);
    fromSnippets.get(from_module).push([from, to]);
    continue;
  }
  edits.push([new RegExp(`(^|[\\s{,])${escape(from)}(?=\\s*:)`, "m"), `$1${to}`, `import ${from}`]);
}
let glueText = fs.readFileSync(glue, "utf8");
const mainObject = glueText.match(new RegExp(`"${escape(mainModule)}"\\s*:\\s*(import\\d+)\\s*,`));
if (!mainObject) fail(`the glue's import object for ${mainModule} not found`);
const assignments = [];
for (const [snippet, names] of fromSnippets) {
  // wasm-bindgen may list a snippet's module more than once (one namespace
  // import each): every one of them goes, any of them provides the names.
  const keys = new RegExp(`\\n\\s*"${escape(snippet)}"\\s*:\\s*(import\\d+)\\s*,`, "g");
  const found = [...glueText.matchAll(keys)];
  if (found.length === 0) fail(`the glue's import object for ${snippet} not found`);
  edits.push([keys, "", `module ${snippet}`]);
  for (const [from, to] of names) {
    if (!ident.test(from)) fail(`snippet import ${from} is not a JavaScript name`);
    assignments.push(`${mainObject[1]}.${to} = ${found[0][1]}.${from};`);
  }
}
if (assignments.length > 0) {
  const returns = /\n(\s*)return \{\n\s*__proto__: null,/g;
  const found = glueText.match(returns)?.length ?? 0;
  if (found !== 1) fail(`expected one import object's return in the glue, found ${found}`);
  edits.push([/\n(\s*)return \{\n\s*__proto__: null,/, `\n$1${assignments.join(" ")}$&`, "the import object's return"]);
}
edits.push([new RegExp(`"${escape(oldModule)}"(?=\\s*:)`), JSON.stringify(module), `module ${oldModule}`]);
const exports = new Map(map.exports);
for (const to of exports.values()) if (!ident.test(to)) fail(`export renamed to ${to}, not a JavaScript name`);
let text = rewrite(glue, edits);
// Every export the glue reads (some, like the abort handler, it never does).
text = text.replace(/\bwasm\.([A-Za-z_$][A-Za-z0-9_$]*)/g, (_, from) => {
  if (!exports.has(from)) fail(`the glue reads wasm.${from}, which the mapping does not name`);
  return `wasm.${exports.get(from)}`;
});
// The glue's own closure trampolines carry the same hashes.
const trampolines = [...new Set(text.match(/\bwasm_bindgen__convert__closures_____invoke__h[0-9a-f]{16}(?:_\d+)?\b/g))];
trampolines.forEach((name, i) => {
  const short = `__wbg_invoke${i}`;
  if (text.includes(short)) fail(`${short} is taken`);
  text = text.replaceAll(new RegExp(`\\b${name}\\b`, "g"), short);
});
fs.writeFileSync(glue, text);
const left = text.match(/\b__wbg_[A-Za-z0-9_]*_[0-9a-f]{16}\b/g);
if (left) fail(`imports left behind in the glue: ${[...new Set(left)].slice(0, 5).join(", ")}`);

// The declarations of the raw exports, in both .d.ts files.
for (const name of ["provider_sync_sdk.d.ts", "provider_sync_sdk_bg.wasm.d.ts"]) {
  const file = path.join(dir, name);
  if (!fs.existsSync(file)) continue;
  let decl = fs.readFileSync(file, "utf8");
  for (const [from, to] of map.exports) {
    decl = decl.replace(new RegExp(`(readonly |export const )${escape(from)}(?=:)`, "g"), `$1${to}`);
  }
  fs.writeFileSync(file, decl);
}
