#!/usr/bin/env python3
"""Rewrites CUDA launches `kernel<T, 4><<<grid, block, shared, stream>>>(args)` of a .cu file as
`::albion::emulation::launch("kernel<T, 4>", kernel<T, 4>, grid, block, shared, stream)(args)`, plain C++ that a
host compiler builds against kernels/emulation/cuda_emulation.h, and follows each `__shared__`
declaration with `::albion::emulation::fresh_shared(&name, sizeof(name));` on the same line (a block
then starts with poisoned shared memory). Nothing else changes, and a `#line` directive keeps
compiler errors and debugger lines pointing at the .cu file. Headers (.cuh) are translated the same way.

usage: translate_launches.py INPUT.cu OUTPUT.cpp   (exit 2 on usage errors or unparsable launches)
"""
import os
import re
import sys

# `__shared__ float lanes[8][4][32];` (not `extern __shared__`, whose size the launch gives).
SHARED_DECLARATION = re.compile(r"(?<!extern )(__shared__\s[^;{}()=]*?\b([A-Za-z_]\w*)\s*(?:\[[^\];]*\]\s*)*;)")


def poison_shared(text):
    return SHARED_DECLARATION.sub(r"\1 ::albion::emulation::fresh_shared(&\2, sizeof(\2));", text)


def kernel_start(text, end):
    """Index where the kernel expression ending just before `end` starts: an optional template
    argument list in angle brackets, preceded by a (possibly qualified) name."""
    while end > 0 and text[end - 1].isspace():
        end -= 1
    i = end
    if text[i - 1] == ">":
        depth = 0
        while i > 0:
            i -= 1
            if text[i] == ">":
                depth += 1
            elif text[i] == "<":
                depth -= 1
                if depth == 0:
                    break
        if depth != 0:
            raise ValueError("unbalanced template arguments before <<<")
    while i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_:"):
        i -= 1
    if i == end or not (text[i].isalpha() or text[i] in "_:"):
        raise ValueError("no kernel name before <<<")
    return i


class LaunchError(ValueError):
    def __init__(self, message, offset):
        super().__init__(message)
        self.offset = offset


def translate(text):
    out, pos = [], 0
    while (open_at := text.find("<<<", pos)) >= 0:
        close_at = text.find(">>>", open_at)
        if close_at < 0:
            raise LaunchError("<<< without >>>", open_at)
        try:
            start = kernel_start(text, open_at)
        except ValueError as e:
            raise LaunchError(str(e), open_at) from None
        if start < pos:
            raise LaunchError("overlapping launches", open_at)
        out.append(text[pos:start])
        kernel = text[start:open_at]
        name = " ".join(kernel.split())
        out.append('::albion::emulation::launch("%s", %s, %s)' % (name, kernel, text[open_at + 3:close_at]))
        pos = close_at + 3
    out.append(text[pos:])
    return poison_shared("".join(out))


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    source, target = argv[1], argv[2]
    with open(source, encoding="utf-8") as f:
        text = f.read()
    try:
        translated = translate(text)
    except LaunchError as e:
        line = text.count("\n", 0, e.offset) + 1
        print(f"{source}:{line}: cannot translate a launch: {e}", file=sys.stderr)
        return 2
    # Written to a temporary name first so an interrupted build never leaves half a file.
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    temporary = target + ".tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(f'#line 1 "{os.path.abspath(source)}"\n')
        f.write(translated)
    os.replace(temporary, target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
