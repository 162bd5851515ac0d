#!/usr/bin/env python3
"""Checks that README.md tells the truth.

  readme_check.py blocks CONFIG    every ```cpp block compiles; programs also run and behave
  readme_check.py programs CONFIG  "## Programs" documents every program and its options

CONFIG is written by tests/readme/CMakeLists.txt: one "key<TAB>value" per line, a key
repeated for lists (compiler, flags, libraries and programs of this build).

How a C++ block is treated (see README.md's "A short API tour" for examples):
- A block with `int main` is a program: it is compiled as it stands, linked with sock::sock
  and sock::engine, and run. With no directive it must exit 0 on its own.
- Any other block is a fragment: it is compiled (not run) inside a function body, with every
  public sock header included, and its own #include lines moved to file scope. Unused
  variables are allowed in fragments; every other warning is an error.
- An HTML comment on the line before a block (invisible on GitHub) says more:
    <!-- readme-test: run ARG... prints TEXT... -->
        run with these arguments; exit 0; each TEXT appears in some line of stdout
    <!-- readme-test: serve ARG... sends TEXT replies TEXT [sends TEXT replies TEXT...] -->
        start it with these arguments (give it port 0); it must print "listening on HOST:PORT";
        each pair is one connection: send TEXT, read to end of stream, expect the reply;
        then SIGTERM, and it must exit 0
    <!-- readme-test: fragment given CODE -->
        CODE (the rest of the comment) comes first in the function body, e.g. the variables
        the fragment uses
  Arguments and TEXT are split like a shell command line: quote text with spaces.
"""

import os
import re
import selectors
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DIRECTIVE = re.compile(r"^\s*<!--\s*readme-test:(.*?)-->\s*$")
FENCE_OPEN = re.compile(r"^```\s*([\w+-]*)\s*$")
CPP_LANGS = {"cpp", "c++", "cxx"}
MAIN = re.compile(r"\bint\s+main\s*\(")
RUN_TIMEOUT = 60      # seconds a program may take (sanitizer builds are slow)
SERVE_TIMEOUT = 30    # seconds to wait for "listening on", a reply, or the exit after SIGTERM


def read_config(path):
    config = {}
    for line in Path(path).read_text().splitlines():
        key, _, value = line.partition("\t")
        if key and value.strip():
            config.setdefault(key, []).append(value.strip())
    return config


def one(config, key):
    values = config.get(key, [])
    if len(values) != 1:
        sys.exit(f"readme_check: the configuration has {len(values)} values for {key!r}")
    return values[0]


def split_flags(config, key):
    """Flags given one per line, or as command-line strings (CMAKE_CXX_FLAGS)."""
    return [flag for value in config.get(key, []) for flag in shlex.split(value)]


class Block:
    def __init__(self, line, lang, code, directive):
        self.line = line            # README line of the block's first code line
        self.lang = lang
        self.code = code
        self.directive = directive  # text after "readme-test:", or None

    @property
    def name(self):
        return f"README.md:{self.line}"


def parse_blocks(readme_text):
    """The fenced blocks, each with the directive of the comment right before it."""
    blocks, problems = [], []
    lines = readme_text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE_OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        lang = m.group(1).lower()
        prev = i - 1
        while prev >= 0 and not lines[prev].strip():
            prev -= 1
        d = DIRECTIVE.match(lines[prev]) if prev >= 0 else None
        start = i + 1
        end = start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            problems.append(f"README.md:{i + 1}: this ``` fence is never closed")
        blocks.append(Block(start + 1, lang, "\n".join(lines[start:end]) + "\n",
                            d.group(1).strip() if d else None))
        i = end + 1
    # A directive must sit right before a C++ block, or it silently checks nothing.
    for n, text in enumerate(lines):
        if DIRECTIVE.match(text):
            nxt = n + 1
            while nxt < len(lines) and not lines[nxt].strip():
                nxt += 1
            m = FENCE_OPEN.match(lines[nxt]) if nxt < len(lines) else None
            if not m or m.group(1).lower() not in CPP_LANGS:
                problems.append(f"README.md:{n + 1}: a readme-test comment must come right "
                                "before a ```cpp block")
    return blocks, problems


def parse_directive(block):
    """(mode, argv, checks) from the block's comment; checks are (keyword, text) pairs."""
    is_program = bool(MAIN.search(block.code))
    if block.directive is None:
        return ("run", [], []) if is_program else ("fragment", "", [])
    mode, _, rest = block.directive.partition(" ")
    if mode == "fragment":
        if is_program:
            raise ValueError("a fragment must not have int main")
        rest = rest.strip()
        if rest and not rest.startswith("given "):
            raise ValueError("write: readme-test: fragment given CODE")
        return "fragment", rest[len("given "):], []
    if mode not in ("run", "serve"):
        raise ValueError(f"unknown readme-test mode {mode!r} (run, serve or fragment)")
    if not is_program:
        raise ValueError(f"readme-test: {mode} needs a program (int main)")
    words = shlex.split(rest)
    keywords = {"run": {"prints"}, "serve": {"sends", "replies"}}[mode]
    argv = []
    while words and words[0] not in keywords:
        argv.append(words.pop(0))
    if len(words) % 2:
        raise ValueError(f"{words[-1]!r} needs a text after it")
    checks = list(zip(words[0::2], words[1::2]))
    for key, _ in checks:
        if key not in keywords:
            raise ValueError(f"{key!r} is not a keyword of {mode}")
    if mode == "serve":
        if [k for k, _ in checks] != ["sends", "replies"] * (len(checks) // 2) or not checks:
            raise ValueError("serve wants pairs: sends TEXT replies TEXT")
    return mode, argv, checks


def public_headers(include_dirs):
    for d in include_dirs:
        found = sorted(Path(d).glob("sock/*.hpp"))
        if found:
            return [f"sock/{h.name}" for h in found]
    sys.exit("readme_check: no sock/*.hpp under the include directories")


def fragment_source(block, given, readme, headers):
    """The fragment inside a function body; #line keeps compiler messages on README lines."""
    out = [f"#include <{h}>" for h in headers]
    body = []
    for n, text in enumerate(block.code.splitlines()):
        if text.lstrip().startswith("#"):
            out += [f'#line {block.line + n} "{readme}"', text]
            body.append("")
        else:
            body.append(text)
    out.append("void readme_fragment() {")
    if given:
        out += [f'#line 1 "{readme}: readme-test comment before line {block.line}"', given]
    out += [f'#line {block.line} "{readme}"'] + body + ["}"]
    return "\n".join(out) + "\n"


def compile_block(block, mode, given, config, work):
    readme = one(config, "readme")
    compiler = one(config, "cxx")
    includes = [f"-I{d}" for d in config.get("include_dir", [])]
    defines = [f"-D{d}" for d in config.get("define", [])]
    flags = (split_flags(config, "cxx_flags") + config.get("std_flag", [])
             + config.get("warning", []) + ["-Werror"] + config.get("compile_option", []))
    stem = work / f"block_L{block.line}"
    if mode == "fragment":
        src = stem.with_suffix(".cpp")
        src.write_text(fragment_source(block, given, readme,
                                       public_headers(config.get("include_dir", []))))
        cmd = ([compiler] + flags + ["-Wno-unused-variable", "-Wno-unused-but-set-variable"]
               + defines + includes + ["-c", str(src), "-o", str(stem.with_suffix(".o"))])
    else:
        src = stem.with_suffix(".cpp")
        src.write_text(f'#line {block.line} "{readme}"\n' + block.code)
        libs = config.get("library", [])
        rpath = sorted({str(Path(lib).parent) for lib in libs if ".so" in Path(lib).name})
        obj = stem.with_suffix(".o")
        # Compiled, then linked: link options (-fsanitize=undefined) must not reach the
        # compile, where they would undo a compile option (-fno-sanitize=function, which
        # clang 14 needs for coroutines: "Cannot represent a difference across sections").
        compile_cmd = [compiler] + flags + defines + includes + ["-c", str(src), "-o", str(obj)]
        result = subprocess.run(compile_cmd, capture_output=True, text=True)
        if result.returncode != 0:
            return None, (f"does not compile:\n  {shlex.join(compile_cmd)}\n"
                          + result.stdout + result.stderr)
        cmd = ([compiler] + split_flags(config, "cxx_flags") + [str(obj), "-o", str(stem)]
               + split_flags(config, "link_flags") + config.get("link_option", []) + libs
               + ["-pthread"] + [f"-Wl,-rpath,{d}" for d in rpath])
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        return None, (f"does not {'compile' if mode == 'fragment' else 'link'}:\n  {shlex.join(cmd)}\n"
                      + result.stdout + result.stderr)
    return stem, None


def show(label, text):
    text = text.strip()
    return f"\n  {label}:\n" + "\n".join("    " + t for t in text.splitlines()) if text else ""


def run_program(exe, argv, checks):
    try:
        r = subprocess.run([str(exe)] + argv, capture_output=True, text=True,
                           timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        return f"did not finish within {RUN_TIMEOUT} s" + show("stdout", e.stdout or "")
    problems = []
    if r.returncode != 0:
        problems.append(f"exited with {r.returncode}")
    lines = r.stdout.splitlines()
    for _, text in checks:
        if not any(text in line for line in lines):
            problems.append(f"printed no line with {text!r}")
    if problems:
        return "; ".join(problems) + show("stdout", r.stdout) + show("stderr", r.stderr)
    return None


def read_line(proc, sel, deadline):
    """The next stdout line of proc, or None at end of output or past the deadline."""
    buf = b""
    while time.monotonic() < deadline:
        if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
            continue
        ch = os.read(proc.stdout.fileno(), 1)
        if not ch:
            return buf.decode(errors="replace") if buf else None
        if ch == b"\n":
            return buf.decode(errors="replace")
        buf += ch
    return None


def ask(host, port, message):
    with socket.create_connection((host, port), timeout=SERVE_TIMEOUT) as s:
        s.sendall(message.encode())
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    return reply.decode(errors="replace")


def serve_program(exe, argv, checks):
    proc = subprocess.Popen([str(exe)] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen, problems, out, err = [], [], b"", b""
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + SERVE_TIMEOUT
        where = None
        while where is None:
            line = read_line(proc, sel, deadline)
            if line is None:
                break
            seen.append(line)
            where = re.search(r"listening on \[?([^\s\]]+?)\]?:(\d+)\s*$", line)
        if where is None:
            problems.append("never printed \"listening on HOST:PORT\"")
        else:
            host, port = where.group(1), int(where.group(2))
            for (_, message), (_, expected) in zip(checks[0::2], checks[1::2]):
                try:
                    reply = ask(host, port, message)
                except OSError as e:
                    problems.append(f"sending {message!r} to {host}:{port}: {e}")
                    continue
                if reply != expected:
                    problems.append(f"replied {reply!r} to {message!r}, not {expected!r}")
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=SERVE_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            problems.append(f"still running {SERVE_TIMEOUT} s after SIGTERM")
        if proc.returncode != 0 and proc.returncode != -signal.SIGKILL:
            problems.append(f"exited with {proc.returncode} after SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if problems:
        stdout = "\n".join(seen) + "\n" + out.decode(errors="replace")
        return ("; ".join(problems) + show("stdout", stdout)
                + show("stderr", err.decode(errors="replace")))
    return None


def check_blocks(config):
    readme = Path(one(config, "readme"))
    work = Path(one(config, "work_dir"))
    work.mkdir(parents=True, exist_ok=True)
    blocks, problems = parse_blocks(readme.read_text())
    cpp = [b for b in blocks if b.lang in CPP_LANGS]
    if not cpp:
        problems.append("README.md has no ```cpp block: nothing to check")
    for block in cpp:
        try:
            mode, argv_or_given, checks = parse_directive(block)
        except ValueError as e:
            problems.append(f"{block.name}: {e}")
            continue
        exe, error = compile_block(block, mode,
                                   argv_or_given if mode == "fragment" else "", config, work)
        if error is None and mode == "run":
            error = run_program(exe, argv_or_given, checks)
        elif error is None and mode == "serve":
            error = serve_program(exe, argv_or_given, checks)
        what = {"fragment": "fragment compiles", "run": "program runs",
                "serve": "server serves"}[mode]
        print(f"{block.name}: {what}: {'FAILED' if error else 'ok'}", flush=True)
        if error:
            problems.append(f"{block.name} ({mode}) {error}")
    return problems


LONG_OPTION = re.compile(r"(?<![\w-])--[A-Za-z0-9][\w-]*")


def sections(text, level):
    """{heading: body} for the headings of this many #s; a shallower heading ends one."""
    out, name, body, in_fence = {}, None, [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        m = None if in_fence else re.match(r"^(#+)\s+(.*?)\s*$", line)
        if m and len(m.group(1)) <= level:
            if name is not None:
                out[name] = "\n".join(body)
            name = m.group(2).strip("`") if len(m.group(1)) == level else None
            body = []
        elif name is not None:
            body.append(line)
    if name is not None:
        out[name] = "\n".join(body)
    return out


def mentions(text, option):
    return re.search(r"(?<![\w-])" + re.escape(option) + r"(?![\w-])", text) is not None


def check_programs(config):
    readme = Path(one(config, "readme")).read_text()
    programs_section = sections(readme, 2).get("Programs")
    if programs_section is None:
        return ["README.md has no \"## Programs\" section"]
    preamble = re.split(r"^### ", programs_section, maxsplit=1, flags=re.M)[0]
    subsections = sections(programs_section, 3)
    problems = []
    programs = config.get("program", [])
    if not programs:
        problems.append("the configuration lists no programs")
    names = set()
    for exe in programs:
        name = Path(exe).name
        names.add(name)
        try:
            r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            problems.append(f"{name} --help did not finish within 30 s")
            continue
        if r.returncode != 0:
            problems.append(f"{name} --help exited with {r.returncode}" + show("stderr", r.stderr))
            continue
        options = sorted(set(LONG_OPTION.findall(r.stdout)))
        doc = subsections.get(name)
        if doc is None:
            problems.append(f"README.md's Programs has no \"### {name}\" (options: "
                            f"{', '.join(options)})")
            continue
        missing = [o for o in options if not mentions(doc, o) and not mentions(preamble, o)]
        if missing:
            problems.append(f"\"### {name}\" does not mention {', '.join(missing)}, "
                            f"which {name} --help lists")
        # The other way: an option in the table that the program no longer has.
        for row in doc.splitlines():
            cell = row.strip().strip("|").split("|")[0] if row.strip().startswith("|") else ""
            for option in LONG_OPTION.findall(cell):
                if option not in options:
                    problems.append(f"\"### {name}\" documents {option}, which {name} --help "
                                    "does not list")
        print(f"{name}: {len(options)} options documented"
              f"{'' if not missing else ', ' + str(len(missing)) + ' missing'}", flush=True)
    for heading in subsections:
        if heading not in names:
            problems.append(f"README.md's Programs has \"### {heading}\", which is not a "
                            "program of this build")
    return problems


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("blocks", "programs"):
        sys.exit(__doc__)
    config = read_config(sys.argv[2])
    problems = (check_blocks if sys.argv[1] == "blocks" else check_programs)(config)
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
