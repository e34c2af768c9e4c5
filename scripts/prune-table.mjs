// Drops from the wasm's function table the entries nothing can call.
//
// wasm-bindgen describes every import of js-sys to its CLI, used or not, and
// the description of an import that takes a closure (`forEach` of each
// typed array, `Array.find`, `Promise.then` ...) names that closure type's
// invoke shim: the linker puts each such shim in the function table. The
// CLI deletes the descriptions, but the table entries stay, and with them
// the shims and what they call (wasm-bindgen/wasm-bindgen#2535): wasm-opt
// cannot prove that no `call_indirect` reaches an entry. The same goes for
// a vtable's functions (js-sys's JSPI task wakers) held only by code of an
// export the CLI drops.
//
// What can reach an entry is known from the linker: built with
// `--emit-relocs`, the module as cargo leaves it records every place that
// holds a function's table index or a data symbol's address (relocations of
// the code and of the data) and every direct call; each function relocation
// is checked against the bytes it points at. What can run is found from
// the roots: the exports wasm-bindgen keeps (the descriptions and the
// exports it drops aside, unless a function it added still calls them),
// the start function, the functions its added functions call, and the
// entries the glue can name (an exported function's, or one an added
// function names in an `i32.const`); then every function they call or hold
// the index of, every data symbol whose address they hold (or an added
// function names), and the functions and data those data hold, to the end.
// An entry is live when something that can run holds its index. This
// script leaves out of the table each entry that is not live, in the module
// wasm-bindgen wrote, after checking that every slot there holds the same
// kind of function as the linker put in it (a closure shim or not, and
// for any other function left out, the same name), that its function is
// not exported (the glue calls the shims it needs through exports; the
// table itself is not exported) and that no added function names the slot.
// The entries kept are written as segments of consecutive slots: a slot no
// segment fills is null. wasm-opt then removes the functions left out and
// what only they called. The linker's sections (`linking`, `reloc.*`),
// which wasm-bindgen passes through, are dropped.
//
//   node scripts/prune-table.mjs LINKED_WASM WASM WASM_DIS
//
// LINKED_WASM is cargo's output (with its relocations), WASM wasm-bindgen's
// (rewritten in place), WASM_DIS binaryen's wasm-dis (for the added
// functions' constants and calls). It prints how many entries it cleared
// (and which functions other than closure shims) and fails on
// anything it cannot read, so that the build stops rather than ship a module
// it did not check.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const [linkedFile, file, disassembler] = process.argv.slice(2);
if (!disassembler) {
  console.error("usage: node scripts/prune-table.mjs LINKED_WASM WASM WASM_DIS");
  process.exit(2);
}
const fail = (message) => {
  console.error(`prune-table: ${message}`);
  process.exit(1);
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

class Module {
  constructor(bytes) {
    this.bytes = bytes;
    // [id, start of contents, end, start of header, custom section's name]
    this.sections = [];
    for (let at = 8; at < bytes.length; ) {
      const id = bytes[at];
      let [size, start] = this.leb(at + 1);
      const end = start + size;
      let name;
      if (id === 0) {
        let length;
        [length, start] = this.leb(start);
        name = bytes.toString("utf8", start, start + length);
        start += length;
      }
      this.sections.push([id, start, end, at, name]);
      at = end;
    }
  }

  leb(at) {
    let value = 0;
    let shift = 0;
    for (;;) {
      const byte = this.bytes[at++];
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (byte < 0x80) return [value, at];
    }
  }

  sleb(at) {
    let value = 0;
    let shift = 0;
    for (;;) {
      const byte = this.bytes[at++];
      value |= (byte & 0x7f) << shift;
      shift += 7;
      if (byte < 0x80) return [shift < 32 && byte & 0x40 ? value | (-1 << shift) : value, at];
    }
  }

  section(id, name) {
    return this.sections.find(([i, , , , n]) => i === id && n === name);
  }

  // How many functions and tables the module imports.
  imported() {
    const counts = { functions: 0, tables: 0 };
    const imports = this.section(2);
    if (!imports) return counts;
    let [count, at] = this.leb(imports[1]);
    for (; count > 0; count--) {
      for (let k = 0; k < 2; k++) {
        let length;
        [length, at] = this.leb(at);
        at += length;
      }
      const kind = this.bytes[at++];
      let flags;
      if (kind === 0) {
        [, at] = this.leb(at);
        counts.functions++;
      } else if (kind === 1) {
        counts.tables++;
        [flags, at] = this.leb(at + 1);
        [, at] = this.leb(at);
        if (flags & 1) [, at] = this.leb(at);
      } else if (kind === 2) {
        [flags, at] = this.leb(at);
        [, at] = this.leb(at);
        if (flags & 1) [, at] = this.leb(at);
      } else if (kind === 3) {
        at += 2;
      } else if (kind === 4) {
        [, at] = this.leb(at + 1);
      } else {
        fail(`an import of kind ${kind}`);
      }
    }
    return counts;
  }

  names() {
    const names = new Map();
    const section = this.section(0, "name");
    if (!section) fail("a module without function names");
    for (let at = section[1]; at < section[2]; ) {
      const sub = this.bytes[at];
      const [size, from] = this.leb(at + 1);
      if (sub === 1) {
        let [count, j] = this.leb(from);
        for (; count > 0; count--) {
          let index, length;
          [index, j] = this.leb(j);
          [length, j] = this.leb(j);
          names.set(index, this.bytes.toString("utf8", j, j + length));
          j += length;
        }
      }
      at = from + size;
    }
    return names;
  }

  // [name, kind, index] of each export.
  exports() {
    const out = [];
    const section = this.section(7);
    if (!section) return out;
    let [count, at] = this.leb(section[1]);
    for (; count > 0; count--) {
      let length, index;
      [length, at] = this.leb(at);
      const name = this.bytes.toString("utf8", at, at + length);
      at += length;
      const kind = this.bytes[at++];
      [index, at] = this.leb(at);
      out.push([name, kind, index]);
    }
    return out;
  }

  // The element segments, of the form "active, i32.const offset, function
  // indices" (flags 0, or 2 with a table index and the funcref kind).
  elements() {
    const section = this.section(9);
    if (!section) fail("no element section");
    let [count, at] = this.leb(section[1]);
    const segments = [];
    for (; count > 0; count--) {
      const flags = this.bytes[at++];
      if (flags !== 0 && flags !== 2) fail(`an element segment of form ${flags}; only 0 and 2 are read`);
      let table = 0;
      if (flags === 2) [table, at] = this.leb(at);
      if (this.bytes[at] !== 0x41) fail("an element segment whose offset is not an i32.const");
      let offset;
      [offset, at] = this.sleb(at + 1);
      if (this.bytes[at++] !== 0x0b) fail("an element segment's offset not ended");
      if (flags === 2 && this.bytes[at++] !== 0x00) fail("an element segment of another kind than funcref");
      let entries;
      [entries, at] = this.leb(at);
      const functions = [];
      for (let k = 0; k < entries; k++) {
        let func;
        [func, at] = this.leb(at);
        functions.push(func);
      }
      segments.push({ flags, table, offset, functions });
    }
    if (at !== section[2]) fail("the element section not read to its end");
    return segments;
  }

  // Table 0's slots: slot -> function index.
  slots() {
    const slots = new Map();
    for (const { table, offset, functions } of this.elements()) {
      if (table === 0) functions.forEach((func, k) => slots.set(offset + k, func));
    }
    return slots;
  }
}

// --- What the linker says can reach each slot. ---

const linked = new Module(fs.readFileSync(linkedFile));
const linking = linked.section(0, "linking");
if (!linking) fail(`${linkedFile} has no linking section: built without --emit-relocs?`);
// The symbol table: each symbol's kind and, for a function, its index.
const [linkingVersion, linkingStart] = linked.leb(linking[1]);
if (linkingVersion !== 2) fail(`linking section version ${linkingVersion}; version 2 is read`);
const symbols = [];
for (let at = linkingStart; at < linking[2]; ) {
  const sub = linked.bytes[at];
  const [size, from] = linked.leb(at + 1);
  if (sub === 8) {
    let [count, j] = linked.leb(from);
    for (; count > 0; count--) {
      const kind = linked.bytes[j++];
      let flags, index;
      [flags, j] = linked.leb(j);
      const undefinedSymbol = flags & 0x10;
      const explicitName = flags & 0x40;
      if (kind === 0 || kind === 2 || kind === 4 || kind === 5) {
        [index, j] = linked.leb(j);
        if (!undefinedSymbol || explicitName) {
          let length;
          [length, j] = linked.leb(j);
          j += length;
        }
        symbols.push([kind, index]);
      } else if (kind === 1) {
        let length;
        [length, j] = linked.leb(j);
        j += length;
        // A defined data symbol: its segment, offset in it and size. An
        // absolute one (WASM_SYM_ABSOLUTE) names an address, not a place
        // in a segment: no range of the data is its own.
        const place = [];
        if (!undefinedSymbol) for (let k = 0; k < 3; k++) [place[k], j] = linked.leb(j);
        symbols.push(flags & 0x200 ? [kind] : [kind, ...place]);
      } else if (kind === 3) {
        [index, j] = linked.leb(j);
        symbols.push([kind, index]);
      } else {
        fail(`a symbol of kind ${kind}`);
      }
    }
  }
  at = from + size;
}
if (symbols.length === 0) fail("no symbol table in the linking section");

// The relocation types (tool-conventions' Linking.md): those that hold a
// table index, a function index, and those followed by an addend.
const TABLE_INDEX = new Set([1, 2, 12, 18, 19, 24]);
const FUNCTION_INDEX = new Set([0, 26]);
const ADDEND = new Set([3, 4, 5, 8, 9, 11, 14, 15, 16, 17, 21, 22, 23, 25]);
const KNOWN = 27;
// A relocation section's entries as [type, offset, function index], after
// checking that it applies to the section `id` (10 code, 11 data); none
// when the linker had nothing to record there.
const relocations = (name, id) => {
  const section = linked.section(0, name);
  if (!section) return [];
  let [target, at] = linked.leb(section[1]);
  if (linked.sections[target]?.[0] !== id) fail(`${name} applies to section ${target}, not to the section of id ${id}`);
  let count;
  [count, at] = linked.leb(at);
  const out = [];
  for (; count > 0; count--) {
    const type = linked.bytes[at++];
    if (type >= KNOWN) fail(`a relocation of unknown type ${type}`);
    let offset, symbol;
    [offset, at] = linked.leb(at);
    [symbol, at] = linked.leb(at);
    if (ADDEND.has(type)) [, at] = linked.sleb(at);
    const [kind, func] = symbols[symbol] ?? fail(`a relocation of symbol ${symbol}, past the table`);
    if ((TABLE_INDEX.has(type) || FUNCTION_INDEX.has(type)) && kind !== 0) {
      fail(`a function relocation of a symbol of kind ${kind}`);
    }
    // The data symbol an address relocation names, when it is defined here.
    const datum = ADDEND.has(type) && kind === 1 && symbols[symbol].length > 1 ? symbol : undefined;
    out.push([type, offset, func, datum]);
  }
  if (at !== section[2]) fail(`${name} not read to its end`);
  return out;
};

// Each function body's range, relative to the code section's contents (as
// the relocations' offsets are).
const code = linked.section(10);
const data = linked.section(11);
const imported = linked.imported().functions;
// Functions the linker writes itself (`__wasm_call_ctors`,
// `__wasm_init_memory`, `__wasm_apply_data_relocs` ...) carry no
// relocations: their calls would be unknown here.
for (const name of linked.names().values()) {
  if (/^__wasm_/.test(name)) fail(`the linked module has ${name}, whose calls the relocations do not record`);
}
const bodies = [];
{
  let [count, at] = linked.leb(code[1]);
  for (let k = 0; k < count; k++) {
    const [size, start] = linked.leb(at);
    bodies.push([at - code[1], start + size - code[1], imported + k]);
    at = start + size;
  }
}
const containing = (offset) => {
  let low = 0;
  let high = bodies.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    const [start, end, func] = bodies[mid];
    if (offset < start) high = mid - 1;
    else if (offset >= end) low = mid + 1;
    else return func;
  }
  fail(`a code relocation at ${offset}, in no function`);
};

const linkedSlots = linked.slots();
const slotOf = new Map([...linkedSlots].map(([slot, func]) => [func, slot]));
// Each relocation checked against the value it points at: a misread of
// the symbols, the imports or the offsets stops the build here.
const check = (section, type, offset, func) => {
  const at = section[1] + offset;
  let value;
  if (type === 0 || type === 1) value = (type === 0 ? linked.leb(at) : linked.sleb(at))[0];
  else if (type === 2 || type === 26) value = linked.bytes.readUInt32LE(at);
  else fail(`a function relocation of type ${type}, not read`);
  const expected = type === 0 || type === 26 ? func : slotOf.get(func);
  if (value !== expected) fail(`a relocation of type ${type} at ${offset} holds ${value}, not ${expected}`);
};
const calls = new Map(); // function -> functions it calls or holds the index of
const heldInCode = new Map(); // function -> functions whose table index it holds
const dataOfCode = new Map(); // function -> data symbols whose address it holds
const add = (map, from, to) => (map.get(from) ?? map.set(from, new Set()).get(from)).add(to);
for (const [type, offset, func, datum] of relocations("reloc.CODE", 10)) {
  if (TABLE_INDEX.has(type) || FUNCTION_INDEX.has(type)) check(code, type, offset, func);
  const from = containing(offset);
  if (FUNCTION_INDEX.has(type)) add(calls, from, func);
  if (TABLE_INDEX.has(type)) {
    add(calls, from, func);
    add(heldInCode, from, func);
  }
  if (datum !== undefined) add(dataOfCode, from, datum);
}

// Where each data segment's bytes start in the data section's contents (as
// the relocations' offsets are counted), then each defined data symbol's
// range there.
const segmentStarts = [];
const segmentAddresses = []; // in memory (undefined for a passive segment)
if (data) {
  let [count, at] = linked.leb(data[1]);
  for (; count > 0; count--) {
    let flags, size;
    [flags, at] = linked.leb(at);
    if (flags > 2) fail(`a data segment of form ${flags}`);
    if (flags === 2) [, at] = linked.leb(at);
    let address;
    if (flags !== 1) {
      if (linked.bytes[at] !== 0x41) fail("a data segment whose offset is not an i32.const");
      [address, at] = linked.sleb(at + 1);
      if (linked.bytes[at++] !== 0x0b) fail("a data segment's offset not ended");
    }
    [size, at] = linked.leb(at);
    segmentAddresses.push(address);
    segmentStarts.push(at - data[1]);
    at += size;
  }
  if (at !== data[2]) fail("the data section not read to its end");
}
const ranges = [];
const addresses = []; // each data symbol's range in memory
symbols.forEach(([kind, segment, offset, size], symbol) => {
  if (kind !== 1 || segment === undefined) return;
  if (segmentStarts[segment] === undefined) fail(`data symbol ${symbol} in segment ${segment}, past the section`);
  ranges.push([segmentStarts[segment] + offset, segmentStarts[segment] + offset + size, symbol]);
  if (segmentAddresses[segment] !== undefined) {
    const address = segmentAddresses[segment] + offset;
    addresses.push([address, address + size, symbol]);
  }
});
// A relocation in the data belongs to every symbol whose bytes hold it; one
// in bytes no symbol names counts as held by data that is always live.
const ALWAYS = -1;
const owners = (offset) => {
  const found = ranges.filter(([start, end]) => offset >= start && offset < end).map(([, , symbol]) => symbol);
  return found.length > 0 ? found : [ALWAYS];
};
const heldInData = new Map(); // data symbol -> functions whose table index it holds
const dataOfData = new Map(); // data symbol -> data symbols whose address it holds
for (const [type, offset, func, datum] of relocations("reloc.DATA", 11)) {
  if (TABLE_INDEX.has(type) || FUNCTION_INDEX.has(type)) check(data, type, offset, func);
  for (const owner of owners(offset)) {
    if (TABLE_INDEX.has(type)) add(heldInData, owner, func);
    if (datum !== undefined) add(dataOfData, owner, datum);
  }
}

// --- The module wasm-bindgen wrote. ---

// Read without the linker's sections, which wasm-bindgen passes through
// (nothing reads them past this point; binaryen would warn of them).
const module = (() => {
  const read = new Module(fs.readFileSync(file));
  const kept = [read.bytes.subarray(0, 8)];
  for (const [id, , end, header, name] of read.sections) {
    if (id !== 0 || !(name === "linking" || name.startsWith("reloc."))) kept.push(read.bytes.subarray(header, end));
  }
  return new Module(Buffer.concat(kept));
})();
const names = module.names();
const linkedNames = linked.names();
// The same functions under their mangled names (cargo's output) and their
// demangled ones (wasm-bindgen's).
const MANGLED = /wasm_bindgen7convert8closures.*6invoke/;
const PRUNABLE = /::convert::closures::_::invoke::</;
// A table of the module's own starts null in every slot no segment fills.
if (module.imported().tables > 0) fail("the function table is imported");
const exported = new Set();
for (const [, kind, index] of module.exports()) {
  if (kind === 0) exported.add(index);
  // JavaScript could call any entry of a table it is given.
  if (kind === 1 && index === 0) fail("the function table is exported");
}
// The table as the linker left it, in wasm-bindgen's module: the same kind
// of function (a closure shim or not) in every slot.
const slots = module.slots();
if (slots.size !== linkedSlots.size) fail(`${slots.size} table entries after wasm-bindgen, ${linkedSlots.size} before`);
for (const [slot, func] of linkedSlots) {
  if (MANGLED.test(linkedNames.get(func) ?? "") !== PRUNABLE.test(names.get(slots.get(slot)) ?? "")) {
    fail(`slot ${slot} holds another kind of function after wasm-bindgen`);
  }
}
// The i32.const operands of the functions wasm-bindgen added (its shims,
// wrappers and import adapters), from binaryen's disassembly: the linker
// knows nothing of them.
const ADDED = / (externref|multivalue) shim$| (jspi|catch|sp) wrapper$|->|^__wbindgen_|^__jspi_/;
const added = new Set();
const calledByAdded = new Set(); // the names of the functions they call
{
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "prune-table-"));
  const stripped = path.join(scratch, "module.wasm");
  fs.writeFileSync(stripped, module.bytes);
  const text = execFileSync(disassembler, [stripped], { maxBuffer: 1 << 30, encoding: "utf8" });
  fs.rmSync(scratch, { recursive: true });
  let scanning = false;
  for (const line of text.split("\n")) {
    const head = line.match(/^ \(func \$(?:"((?:[^"\\]|\\.)*)"|(\S+))/);
    if (head) scanning = ADDED.test(head[1] ?? head[2]);
    else if (/^ \(/.test(line)) scanning = false;
    if (!scanning) continue;
    for (const match of line.matchAll(/i32\.const (-?\d+)/g)) added.add(Number(match[1]));
    for (const match of line.matchAll(/\((?:call|ref\.func) \$(?:"((?:[^"\\]|\\.)*)"|([^\s)]+))/g)) {
      calledByAdded.add(match[1] ?? match[2]);
    }
  }
}

// What can run, from the exports (the descriptions' aside), the start
// function and the entries the glue names (exported, or an added
// function's constant): every function they call or hold the table index
// of, every data symbol whose address they hold, and from those data every
// function whose index and every data symbol whose address they hold, to
// the end. An entry is live when something that can run, code or data,
// holds its index; a vtable held only by code nothing can reach (js-sys's
// task wakers for JSPI, whose exports wasm-bindgen leaves out) is not.
// wasm-bindgen exports the SDK's own exports without the hash it suffixed
// them with; an export of the linked module under neither name in its
// module is one the CLI consumed and dropped (the descriptions, js-sys's
// `__wbg_jspi_task_poll`), which the glue cannot call.
// A function other than a closure shim is left out only when its name
// after wasm-bindgen (demangled) ends in an identifier its linked name
// (mangled: each identifier preceded by its length) holds: a check that the
// slot still holds the function the relocations were read for.
const lastIdentifier = (name) => {
  let plain = name.replace(/\[[0-9a-f]+\]/g, "");
  for (let before = ""; before !== plain; ) [before, plain] = [plain, plain.replace(/<[^<>]*>|\{[^{}]*\}/g, "")];
  return plain.split("::").filter((part) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(part)).pop();
};
const sameFunction = (linkedName, name) => {
  const last = lastIdentifier(name);
  return linkedName === name || (last !== undefined && linkedName.includes(`${last.length}${last}`));
};
const exportNames = new Set(module.exports().map(([name]) => name));
const roots = [];
const dropped = [];
for (const [name, kind, index] of linked.exports()) {
  if (kind !== 0) continue;
  if (exportNames.has(name) || exportNames.has(name.replace(/_[0-9a-f]{16}$/, ""))) roots.push(index);
  else dropped.push(name);
}
if (linked.section(8)) roots.push(linked.leb(linked.section(8)[1])[0]);
for (const [slot, func] of linkedSlots) {
  if (added.has(slot) || exported.has(slots.get(slot))) roots.push(func);
}
// What the added functions call directly (the original of an export they
// wrap, or a function of an export the CLI dropped that one still calls):
// by name, loosely, so that a function is taken for one of them rather
// than missed.
for (const [func, linkedName] of linkedNames) {
  for (const name of calledByAdded) {
    if (sameFunction(linkedName, name)) {
      roots.push(func);
      break;
    }
  }
}
const reached = new Set();
const liveData = new Set();
const live = new Set();
const funcs = [...roots];
// The data an added function names by its address.
const datums = [ALWAYS];
for (const value of added) {
  for (const [start, end, symbol] of addresses) if (value >= start && value < end) datums.push(symbol);
}
while (funcs.length > 0 || datums.length > 0) {
  while (funcs.length > 0) {
    const func = funcs.pop();
    if (reached.has(func)) continue;
    reached.add(func);
    funcs.push(...(calls.get(func) ?? []));
    for (const held of heldInCode.get(func) ?? []) live.add(held);
    datums.push(...(dataOfCode.get(func) ?? []));
  }
  while (datums.length > 0) {
    const datum = datums.pop();
    if (liveData.has(datum)) continue;
    liveData.add(datum);
    for (const held of heldInData.get(datum) ?? []) {
      live.add(held);
      funcs.push(held);
    }
    datums.push(...(dataOfData.get(datum) ?? []));
  }
}
const dead = new Set();
for (const [slot, func] of linkedSlots) {
  const name = names.get(slots.get(slot)) ?? "";
  const shim = MANGLED.test(linkedNames.get(func) ?? "");
  if (!live.has(func) && (shim ? PRUNABLE.test(name) : sameFunction(linkedNames.get(func) ?? "", name))) dead.add(slot);
}

// Each segment's entries kept, in runs of consecutive slots, each run a
// segment of the same form: a slot of a table defined here that no segment
// fills is null.
const sleb = (value) => {
  const out = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    if ((value === 0 && !(byte & 0x40)) || (value === -1 && byte & 0x40)) return [...out, byte];
    out.push(byte | 0x80);
  }
};
const segments = [];
let cleared = 0;
const others = [];
for (const { flags, table, offset, functions } of module.elements()) {
  let run = null;
  functions.forEach((func, k) => {
    const slot = offset + k;
    const prunable = table === 0 && dead.has(slot) && !exported.has(func) && !added.has(slot);
    if (prunable) {
      cleared++;
      if (!PRUNABLE.test(names.get(func) ?? "")) others.push(names.get(func));
      run = null;
      return;
    }
    if (!run) segments.push((run = { flags, table, offset: slot, functions: [] }));
    run.functions.push(func);
  });
}
const out = [...uleb(segments.length)];
for (const { flags, table, offset, functions } of segments) {
  out.push(flags);
  if (flags === 2) out.push(...uleb(table));
  out.push(0x41, ...sleb(offset), 0x0b);
  if (flags === 2) out.push(0x00);
  out.push(...uleb(functions.length));
  for (const func of functions) out.push(...uleb(func));
}
const parts = [module.bytes.subarray(0, 8)];
for (const [id, , end, header] of module.sections) {
  if (id === 9) {
    const body = Buffer.from(out);
    parts.push(Buffer.from([9, ...uleb(body.length)]), body);
  } else {
    parts.push(module.bytes.subarray(header, end));
  }
}
const rebuilt = Buffer.concat(parts);
try {
  new WebAssembly.Module(rebuilt);
} catch (error) {
  fail(`the rewritten module does not validate (${error.message}); ${file} is left as it was`);
}
fs.writeFileSync(file, rebuilt);
console.log(
  `prune-table: cleared ${cleared} of the function table's ${slots.size} entries` +
    (others.length > 0 ? `, closure shims and ${others.length} others: ${others.join(", ")}` : "") +
    ` (exports dropped by wasm-bindgen: ${dropped.filter((name) => !name.startsWith("__wbindgen_describe")).join(", ")})`,
);
