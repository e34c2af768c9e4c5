// Drops from the wasm's function table the closure shims nothing can call.
//
// wasm-bindgen describes every import of js-sys to its CLI, used or not, and
// the description of an import that takes a closure (`forEach` of each
// typed array, `Array.find`, `Promise.then` ...) names that closure type's
// invoke shim: the linker puts each such shim in the function table. The
// CLI deletes the descriptions, but the table entries stay, and with them
// the shims and what they call (wasm-bindgen/wasm-bindgen#2535): wasm-opt
// cannot prove that no `call_indirect` reaches an entry. This script clears
// (to null) each entry that is a closure invoke shim or a js-sys task waker
// function when nothing in the module can name its index: the function is
// not exported, no `i32.const` in the code has the index as operand (other
// than an operand of arithmetic or a comparison, as binaryen's disassembler
// prints it) and no aligned 4 bytes of the data spell it. An index that
// occurs as a mere number keeps its entry: the checks can keep a dead
// entry, never drop a live one. The glue calls the shims it needs through
// exports, and the table itself is not exported. wasm-opt then removes the
// cleared shims and what only they called.
//
//   node scripts/prune-table.mjs WASM WASM_DIS
//
// WASM_DIS is binaryen's wasm-dis, which decodes the code for the check.
//
// It prints how many entries it cleared, and fails on a module whose table
// it cannot read (then the build stops rather than ship a module it did not
// check).
import { execFileSync } from "node:child_process";
import fs from "node:fs";

const [file, disassembler] = process.argv.slice(2);
if (!disassembler) {
  console.error("usage: node scripts/prune-table.mjs WASM WASM_DIS");
  process.exit(2);
}
const fail = (message) => {
  console.error(`prune-table: ${message}`);
  process.exit(1);
};
const wasm = fs.readFileSync(file);
const PRUNABLE = /::convert::closures::_::invoke::<|::futures::jspi::task_waker::/;

const leb = (at) => {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = wasm[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (byte < 0x80) return [value, at];
  }
};
const uleb = (value) => {
  const out = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value) byte |= 0x80;
    out.push(byte);
  } while (value);
  return out;
};
const sleb = (value) => {
  const out = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    if ((value === 0 && !(byte & 0x40)) || (value === -1 && byte & 0x40)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
};

// The sections: [id, start of contents, end, start of header].
const sections = [];
for (let at = 8; at < wasm.length; ) {
  const id = wasm[at];
  const [size, start] = leb(at + 1);
  sections.push([id, start, start + size, at]);
  at = start + size;
}
const section = (id) => sections.find(([i]) => i === id);

const names = new Map();
for (const [id, start, end] of sections) {
  if (id !== 0) continue;
  let [length, at] = leb(start);
  if (wasm.toString("utf8", at, at + length) !== "name") continue;
  at += length;
  while (at < end) {
    const sub = wasm[at];
    const [size, from] = leb(at + 1);
    if (sub === 1) {
      let [count, j] = leb(from);
      for (; count > 0; count--) {
        let index;
        [index, j] = leb(j);
        [length, j] = leb(j);
        names.set(index, wasm.toString("utf8", j, j + length));
        j += length;
      }
    }
    at = from + size;
  }
}
if (names.size === 0) fail("no function names (the name section is read before wasm-opt strips it)");

const exported = new Set();
if (section(7)) {
  let [count, at] = leb(section(7)[1]);
  for (; count > 0; count--) {
    let length;
    [length, at] = leb(at);
    at += length;
    const kind = wasm[at++];
    let index;
    [index, at] = leb(at);
    if (kind === 0) exported.add(index);
    // JavaScript could call any entry of a table it is given.
    if (kind === 1 && index === 0) fail("the function table is exported");
  }
}

const elements = section(9);
if (!elements) fail("no element section");
// Every i32.const operand in the module that could be a function's index,
// read from binaryen's disassembly (one expression a line, each operand
// indented under its operator): all of them, except an operand of
// arithmetic or a comparison (an offset, a size, a bound: a function's
// index is called, stored, passed or returned, never added to).
const ARITHMETIC = /^\((i32\.(add|sub|mul|div_[su]|rem_[su]|and|or|xor|shl|shr_[su]|eq|ne|[lg][te]_[su]))$/;
const constants = new Set();
const lines = execFileSync(disassembler, [file], { maxBuffer: 1 << 30, encoding: "utf8" }).split("\n");
lines.forEach((line, at) => {
  for (const match of line.matchAll(/i32\.const (-?\d+)/g)) {
    const alone = /^\s*\(i32\.const -?\d+\)$/.test(line);
    if (alone) {
      const indent = line.search(/\S/);
      let parent = at - 1;
      while (parent >= 0 && lines[parent].search(/\S/) >= indent) parent--;
      const operator = parent >= 0 ? lines[parent].trim().split(/\s/)[0] : "";
      if (ARITHMETIC.test(operator)) continue;
    }
    constants.add(Number(match[1]));
  }
});
const inCode = (index) => constants.has(index);
// Data is read as memory holds it: a table index stored in memory (a
// vtable, a static table of functions) is a 4-byte word at an address a
// multiple of 4, as Rust lays out a function pointer on wasm32.
const words = new Set();
if (section(11)) {
  let [count, j] = leb(section(11)[1]);
  for (; count > 0; count--) {
    const kind = wasm[j++];
    if (kind !== 0) fail(`data segment of form ${kind}; only 0 is read`);
    if (wasm[j] !== 0x41) fail("data segment whose offset is not an i32.const");
    let base = 0;
    let shift = 0;
    for (j++; ; ) {
      const byte = wasm[j++];
      base |= (byte & 0x7f) << shift;
      shift += 7;
      if (byte < 0x80) break;
    }
    if (wasm[j++] !== 0x0b) fail("data segment offset not ended");
    let length;
    [length, j] = leb(j);
    for (let k = (4 - (base % 4)) % 4; k + 4 <= length; k += 4) words.add(wasm.readUInt32LE(j + k));
    j += length;
  }
}
const inData = (index) => words.has(index);

// Each segment of the form "active, table 0 (or given), i32.const offset,
// function indices" (flags 0 and 2) is rewritten as expressions (flags 4
// and 6): `ref.func i` for an entry kept, `ref.null func` for one cleared.
let [count, at] = leb(elements[1]);
const out = [...uleb(count)];
let cleared = 0;
for (; count > 0; count--) {
  const flags = wasm[at++];
  if (flags !== 0 && flags !== 2) fail(`element segment of form ${flags}; only 0 and 2 are read`);
  let table = 0;
  if (flags === 2) [table, at] = leb(at);
  const offsetStart = at;
  if (wasm[at] !== 0x41) fail("element segment whose offset is not an i32.const");
  let offset = 0;
  let shift = 0;
  for (at++; ; ) {
    const byte = wasm[at++];
    offset |= (byte & 0x7f) << shift;
    shift += 7;
    if (byte < 0x80) break;
  }
  if (wasm[at++] !== 0x0b) fail("element segment offset not ended");
  const offsetExpr = [...wasm.subarray(offsetStart, at)];
  if (flags === 2 && wasm[at++] !== 0x00) fail("element segment of a kind other than funcref");
  let entries;
  [entries, at] = leb(at);
  const items = [];
  for (let k = 0; k < entries; k++) {
    let func;
    [func, at] = leb(at);
    const slot = offset + k;
    const prunable =
      table === 0 &&
      PRUNABLE.test(names.get(func) ?? "") &&
      !exported.has(func) &&
      !inCode(slot) &&
      !inData(slot);
    if (prunable) {
      items.push(0xd0, 0x70, 0x0b);
      cleared++;
    } else {
      items.push(0xd2, ...uleb(func), 0x0b);
    }
  }
  if (flags === 0) out.push(4, ...offsetExpr);
  else out.push(6, ...uleb(table), ...offsetExpr, 0x70);
  out.push(...uleb(entries), ...items);
}
if (at !== elements[2]) fail("element section not read to its end");

const body = Buffer.from(out);
const rebuilt = Buffer.concat([
  wasm.subarray(0, elements[3]),
  Buffer.from([9, ...uleb(body.length)]),
  body,
  wasm.subarray(elements[2]),
]);
new WebAssembly.Module(rebuilt);
fs.writeFileSync(file, rebuilt);
console.log(`prune-table: cleared ${cleared} of the function table's entries`);
