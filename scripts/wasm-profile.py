#!/usr/bin/env python3
"""What the SDK's wasm is made of: the size of each function's code, by the
names in the wasm's name section, summed by part of the SDK.

    python3 scripts/wasm-profile.py [WASM] [--top N]

WASM defaults to the SDK as wasm-bindgen leaves it, before wasm-opt (names
kept): scripts/build-pkg.sh builds the wasm; this runs wasm-bindgen on it
into a temporary directory. The parts are matched on the demangled names;
the first part that matches takes the function.
"""
import os
import re
import subprocess
import sys
import tempfile

PARTS = [
    ("the SDK's I/O: driver, service, tabs, IndexedDB, transports, page, credentials, listeners",
     r"provider_sync_sdk\[\w+\]::(driver|service|tabs|idb|transport|page|auth|listeners|fields)"),
    ("wire: the table-driven reader and writer, JSON text, the event reader",
     r"provider_sync_wire|provider_sync_sdk\[\w+\]::wire"),
    ("the SDK's logic: state machine, view, config, cache, backoff",
     r"provider_sync_sdk\[\w+\]::(machine|view|config|cache|backoff|error)"),
    ("protocol: apply, checksum (xxh3), queries, availability", r"provider_sync_protocol|xxhash"),
    ("wasm-bindgen, js-sys, web-sys: futures, closures, conversions", r"wasm_bindgen|js_sys|web_sys|futures"),
    ("allocation and collections (`Vec`, `Rc`, `String`; talc)", r"talc|alloc\[|hashbrown"),
    ("core::fmt", r"core\[\w+\]::fmt"),
]


def leb(data, i):
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def functions(data):
    """(code size, name) of each function defined in the module, and the
    size of each section by id."""
    i, imports, bodies, names, sections = 8, 0, [], {}, {}
    while i < len(data):
        kind = data[i]
        size, i = leb(data, i + 1)
        start, end = i, i + size
        sections[kind] = sections.get(kind, 0) + size
        if kind == 2:  # imports: functions among them shift the indices
            count, j = leb(data, start)
            for _ in range(count):
                for _ in range(2):
                    length, j = leb(data, j)
                    j += length
                what = data[j]
                j += 1
                if what == 0:
                    _, j = leb(data, j)
                    imports += 1
                elif what == 1:
                    j += 1
                    flags, j = leb(data, j)
                    _, j = leb(data, j)
                    if flags & 1:
                        _, j = leb(data, j)
                elif what == 2:
                    flags, j = leb(data, j)
                    _, j = leb(data, j)
                    if flags & 1:
                        _, j = leb(data, j)
                elif what == 3:
                    j += 2
        elif kind == 10:
            count, j = leb(data, start)
            for _ in range(count):
                length, j = leb(data, j)
                bodies.append(length)
                j += length
        elif kind == 0:
            length, j = leb(data, start)
            if data[j:j + length] == b"name":
                j += length
                while j < end:
                    sub = data[j]
                    sub_size, j = leb(data, j + 1)
                    sub_end = j + sub_size
                    if sub == 1:
                        count, j = leb(data, j)
                        for _ in range(count):
                            index, j = leb(data, j)
                            length, j = leb(data, j)
                            names[index] = data[j:j + length].decode("utf-8", "replace")
                            j += length
                    j = sub_end
        i = end
    return [(size, names.get(imports + k, "?")) for k, size in enumerate(bodies)], sections


def main():
    args = sys.argv[1:]
    top = 0
    if "--top" in args:
        at = args.index("--top")
        top = int(args[at + 1])
        del args[at:at + 2]
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    if args:
        path = args[0]
    else:
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
        built = os.path.join(target, "wasm32-unknown-unknown", "wasm-release", "provider_sync_sdk.wasm")
        out = tempfile.mkdtemp()
        subprocess.run(["wasm-bindgen", "--target", "web", "--out-dir", out, built], check=True)
        path = os.path.join(out, "provider_sync_sdk_bg.wasm")
    with open(path, "rb") as f:
        rows, sections = functions(f.read())
    total = sum(size for size, _ in rows)
    sums = {name: 0 for name, _ in PARTS}
    rest = 0
    for size, name in rows:
        for part, pattern in PARTS:
            if re.search(pattern, name):
                sums[part] += size
                break
        else:
            rest += size
    print(f"{len(rows)} functions, {total:,} B of code; data {sections.get(11, 0):,} B\n")
    print("| part | bytes | share |\n| --- | ---: | ---: |")
    for part, _ in PARTS:
        print(f"| {part} | {sums[part]:,} | {100 * sums[part] / total:.1f}% |")
    print(f"| core, std and the rest | {rest:,} | {100 * rest / total:.1f}% |")
    if top:
        print()
        for size, name in sorted(rows, reverse=True)[:top]:
            print(f"{size:6d} {name}")


main()
