#!/usr/bin/env python3
"""Holds the service crate's modules to their layers: fails when a module imports upward, or
when files import each other in a circle.

usage: python3 scripts/layers.py [--edges]   (from anywhere; exit 0 clean, 1 otherwise)

The layers are listed once, below (LAYERS, top to bottom, as docs/architecture.md shows them).
A module may name what is in its own layer or below. A folder's files have their own order
(FOLDERS). `--edges` prints every edge read, for a look at what the check sees.

What it can see: it reads text, not Rust's name resolution. It strips comments, strings and
every `#[cfg(test)] mod x { ... }` and leaves out every file declared `#[cfg(test)] mod x;` (a
unit test may build its fixtures from any layer), then reads every path that starts with `crate::`, `super::` or `self::` (grouped `use`
trees included), and in a folder's `mod.rs` every path through one of its children (`args::Cli`).
It cannot see a name brought in by a glob (`use crate::x::*`) and then used bare, a path written
inside a macro's own syntax that is not a path, or a path through an alias (`use crate::effects;`
then `effects::cdn::config` counts as `effects`, which is enough for the layers). `mod x;`
lines and `pub use` re-exports in lib.rs or a mod.rs (a facade) are not imports.
"""
import os
import re
import sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")

# Top to bottom. Each entry: (layer, the top-level modules in it). `lib` and `main` sit above
# every layer. A module may import from its own layer or any layer below it, never above.
LAYERS = [
    ("entry points", ["cli", "lambda"]),
    ("operations", ["staff_override"]),
    ("pipeline", ["pipeline"]),
    ("metrics", ["metrics"]),
    ("outcomes", ["outcome"]),
    ("execution", ["execute"]),
    # The plan and the effects import each other today (the effect registry will part them).
    # Loading the settings gathers every effect's keys (effects::EFFECTS), so it sits above them;
    # the keys' type and the loaded Settings sit below, where the effects read them.
    ("settings loading", ["settings", "settings::schema", "settings::sources",
                          "settings::validate"]),
    ("plan and effects", ["plan", "effects"]),
    ("exactly once, history", ["ledger", "history"]),
    ("file set", ["fileset"]),
    ("clients", ["github", "cdn", "mail", "webhook", "councils", "retry"]),
    ("texts", ["templates", "markdown"]),
    ("logs, Sentry", ["logging", "telemetry"]),
    ("settings' keys and values", ["settings::key", "settings::model", "settings::values"]),
    ("secrets", ["secrets"]),
    ("storage", ["storage"]),
    ("report, event", ["report", "event"]),
    ("upload keys, HTTP", ["upload", "http", "vocab"]),
    ("AWS configuration", ["aws"]),
    ("fuzzing", ["fuzzing"]),
]

# A folder's own order, top to bottom: (layer, its files by module name; `mod` is mod.rs).
FOLDERS = {
    "cli": [
        ("dispatch", ["mod"]),
        ("commands", ["check", "run", "simulate", "replay", "override_upload"]),
        ("printing, start-up", ["output", "start"]),
        ("arguments, exit", ["args", "exit"]),
    ],
    "storage": [
        ("facade", ["mod"]),
        ("implementations", ["local", "s3", "overlay"]),
        ("the trait and its types", ["api"]),
    ],
}

# Not held to a layer: `fuzzing` exists for the fuzz targets outside the crate, and drives
# whichever parser they fuzz.
UNLAYERED = {"fuzzing"}

# Circles known and allowed for now, by the top-level modules they lie in: each must still be
# there (a stale entry fails too). effects/mod.rs lists the effects (PLANNERS) and defines the
# trait they implement, and plan names both; the effect registry is to part them.
KNOWN_CIRCLES = []


def strip(code):
    """Blanks comments, strings and char literals (keeping newlines, so line numbers hold),
    then blanks every `#[cfg(test)] mod x { ... }`."""
    out, i, n = [], 0, len(code)
    while i < n:
        c = code[i]
        if code.startswith("//", i):
            j = code.find("\n", i)
            i = n if j < 0 else j
        elif code.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if code.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif code.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * code.count("\n", i, j))
            i = j
        elif c == "r" and (i == 0 or not (code[i - 1].isalnum() or code[i - 1] == "_")) and \
                re.match(r'r#*"', code[i:i + 10]):
            m = re.match(r'r(#*)"', code[i:])
            close = '"' + m.group(1)
            j = code.find(close, i + len(m.group(0)))
            j = n if j < 0 else j + len(close)
            out.append('""' + "\n" * code.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and code[j] != '"':
                j += 2 if code[j] == "\\" else 1
            j += 1
            out.append('""' + "\n" * code.count("\n", i, j))
            i = j
        elif c == "'":
            m = re.match(r"'(?:\\u\{[0-9a-fA-F]+\}|\\.|[^'\\])'", code[i:i + 14])
            if m:
                i += len(m.group(0))
                out.append("' '")
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    code = "".join(out)
    # Test-only modules, wherever they are: blanked to their closing brace (newlines kept).
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", code)
        if not m:
            return code
        depth, j = 1, m.end()
        while j < len(code) and depth:
            depth += (code[j] == "{") - (code[j] == "}")
            j += 1
        code = code[:m.start()] + "\n" * code.count("\n", m.start(), j) + code[j:]


def use_tree(body):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    body = re.sub(r"\s+", "", body)
    m = re.match(r"^([\w:]*?)(?:::)?\{(.*)\}$", body)
    if not m:
        return [body]
    base, inner = m.group(1), m.group(2)
    items, depth, cur = [], 0, ""
    for ch in inner:
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    out = []
    for it in filter(None, items):
        for sub in use_tree(it):
            out.append(base if sub == "self" else (f"{base}::{sub}" if base else sub))
    return out


def modules():
    """Module path (a tuple) -> file, for every file of src/ but main.rs (the binary)."""
    found = {}
    for dirpath, _, names in os.walk(SRC):
        for name in names:
            if not name.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), SRC)[:-3].split(os.sep)
            if rel == ["main"]:
                continue
            path = () if rel == ["lib"] else tuple(rel[:-1] if rel[-1] == "mod" else rel)
            found[path] = os.path.join(dirpath, name)
    # A file declared `#[cfg(test)] mod x;` is a unit test's, like an inline test module: left
    # out, with everything below it.
    for path, file in list(found.items()):
        if os.path.basename(file) not in ("lib.rs", "mod.rs"):
            continue
        code = open(file, encoding="utf-8").read()
        for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", code):
            test_mod = path + (m.group(1),)
            for other in [p for p in found if p[:len(test_mod)] == test_mod]:
                del found[other]
    return found


def paths_in(code, here, children):
    """(line, path as a tuple from the crate root) for every path the code names."""
    found = []

    def add(offset, text):
        parts = [p for p in re.sub(r"\s+", "", text).split("::") if p]
        head = parts[0] if parts else ""
        if head == "crate":
            resolved = tuple(parts[1:])
        elif head == "self":
            resolved = here + tuple(parts[1:])
        elif head == "super":
            base = list(here)
            while parts and parts[0] == "super":
                base, parts = base[:-1], parts[1:]
            resolved = tuple(base) + tuple(parts)
        elif head in children:
            resolved = here + tuple(parts)
        else:
            return
        found.append((code.count("\n", 0, offset) + 1, resolved))

    for m in re.finditer(r"\buse\s+([^;]*);", code):
        for p in use_tree(m.group(1)):
            add(m.start(), re.sub(r"\s+as\s+\w+$", "", p))
    rest = re.sub(r"\buse\s+[^;]*;", lambda m: "\n" * m.group(0).count("\n"), code)
    for m in re.finditer(r"(?<![\w:])((?:crate|super|self)(?:\s*::\s*\w+)+)", rest):
        add(m.start(), m.group(1))
    for m in re.finditer(r"(?<![\w:])(\w+)((?:::\w+)+)", rest):
        if m.group(1) in children:
            add(m.start(), m.group(0))
    return found


def target(path, mods, reexports):
    """The module a path names: its longest prefix that is a module, or, when that module is a
    facade that re-exports the next name, the module the name comes from."""
    for n in range(len(path), -1, -1):
        if path[:n] in mods:
            to = path[:n]
            while n < len(path) and (to, path[n]) in reexports:
                to = reexports[(to, path[n])]
            return to
    return None


def facade_reexports(mods):
    """(facade module, name) -> the module the name comes from, for the `pub use` lines of
    lib.rs and each mod.rs."""
    found = {}
    for here, file in mods.items():
        if os.path.basename(file) not in ("lib.rs", "mod.rs"):
            continue
        code = strip(open(file, encoding="utf-8").read())
        children = {m[-1] for m in mods if len(m) == len(here) + 1 and m[:-1] == here}
        for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]*);", code):
            for item in use_tree(m.group(1)):
                alias = re.search(r"\s*as\s+(\w+)$", item)
                item = re.sub(r"\s*as\s+\w+$", "", item)
                for _, path in paths_in(f"use {item};", here, children):
                    source = target(path[:-1], mods, {})
                    if source is not None and source != here:
                        found[(here, alias.group(1) if alias else path[-1])] = source
    return found


def unit(module):
    """The LAYERS member a module belongs to: the longest listed path it starts with
    (`settings::schema` before `settings`), or its top-level part."""
    best = module[0] if module else ""
    for _, members in LAYERS:
        for member in members:
            parts = tuple(member.split("::"))
            if module[:len(parts)] == parts and len(parts) > len(best.split("::")):
                best = member
    return best


def rank(module):
    """(layer index, layer name) of a module's unit (see `unit`), or None when it is unlisted."""
    u = unit(module)
    for i, (name, members) in enumerate(LAYERS):
        if u in members:
            return i, name
    return None


def folder_rank(module):
    order = FOLDERS.get(module[0])
    if order is None:
        return None
    leaf = module[1] if len(module) > 1 else "mod"
    for i, (name, members) in enumerate(order):
        if leaf in members:
            return i, name
    return None


def circles(edges):
    """Strongly connected sets of two or more files (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                out.append(sorted(scc))

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def main():
    show_edges = "--edges" in sys.argv[1:]
    mods = modules()
    reexports = facade_reexports(mods)
    problems, edges, count = [], defaultdict(set), 0
    for top in sorted({m[0] for m in mods if m}):
        if rank((top,)) is None:
            problems.append(f"src: the module `{top}` is in no layer: add it to LAYERS in "
                            "scripts/layers.py and to docs/architecture.md")
    for folder, order in FOLDERS.items():
        listed = {leaf for _, members in order for leaf in members}
        for m in mods:
            if len(m) == 2 and m[0] == folder and m[1] not in listed:
                problems.append(f"src/{folder}: `{m[1]}` is in no layer of FOLDERS[{folder!r}]")
    for here, file in sorted(mods.items()):
        rel = os.path.relpath(file, ROOT)
        code = strip(open(file, encoding="utf-8").read())
        facade = os.path.basename(file) in ("lib.rs", "mod.rs")
        if facade:
            code = re.sub(r"\bpub(\([^)]*\))?\s+use\s+[^;]*;",
                          lambda m: "\n" * m.group(0).count("\n"), code)
        children = {m[-1] for m in mods if len(m) == len(here) + 1 and m[:-1] == here}
        for line, path in paths_in(code, here, children):
            to = target(path, mods, reexports)
            if to is None or to == here:
                continue  # outside the crate (a dependency), or itself
            count += 1
            edges[here].add(to)
            if show_edges:
                print(f"{rel}:{line}: {'::'.join(here) or 'lib'} -> {'::'.join(to) or 'lib'}")
            if not here or here[0] in UNLAYERED:
                continue
            if not to:
                problems.append(f"{rel}:{line}: names the crate root (`crate::X`): name the "
                                "module X comes from")
                continue
            a, b = rank(here), rank(to)
            if a is None or b is None:
                continue
            if unit(here) != unit(to):
                if b[0] < a[0]:
                    problems.append(f"{rel}:{line}: `{'::'.join(here)}` ({a[1]}) imports "
                                    f"`{'::'.join(to)}`, a layer above it ({b[1]})")
                continue
            fa, fb = folder_rank(here), folder_rank(to)
            if fa and fb and fb[0] < fa[0]:
                problems.append(f"{rel}:{line}: `{'::'.join(here)}` ({fa[1]}) imports "
                                f"`{'::'.join(to)}`, above it in src/{here[0]}/ ({fb[1]})")
    known_seen = set()
    for scc in circles(edges):
        names = ", ".join("::".join(m) or "lib" for m in scc)
        tops = {m[0] for m in scc if m}
        known_seen.update(i for i, k in enumerate(KNOWN_CIRCLES) if tops & k)
        if any(tops <= k for k in KNOWN_CIRCLES):
            print(f"known circle (KNOWN_CIRCLES, allowed for now): {names}")
        else:
            problems.append(f"src: a circle of files: {names}")
    for i, k in enumerate(KNOWN_CIRCLES):
        if i not in known_seen:
            problems.append(f"scripts/layers.py: KNOWN_CIRCLES lists {sorted(k)}, which are no "
                            "longer in a circle: remove the entry")
    problems = list(dict.fromkeys(problems))
    for p in problems:
        print(p)
    print(f"layers: {len(mods)} files of src/ read, {count} imports between modules seen, "
          f"{len(problems)} problem(s). It reads text: see the top of scripts/layers.py for what "
          "it cannot see.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
