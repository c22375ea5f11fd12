#!/usr/bin/env python3
"""Single-thread encoding throughput of Python `tokenizers` and tiktoken, the companion of
bench/tokenizer_throughput.cpp: same input (every file encoded whole, special tokens as text), same
vocabulary, whole files and then paragraphs (chunks ending after each blank line), cold first run
then the median of 5 warm runs, MB/s of UTF-8 input.

    RAYON_NUM_THREADS=1 .venv/bin/python bench/tokenizer_throughput.py [tokenizer.json] [FILE...]

The thread limits are set below before the packages are imported, so the plain command is
single-threaded too. tiktoken gets the same BPE (ranks = token ids, which follow merge order in a
trained byte-level BPE) and its ids are checked against `tokenizers`' before timing.
"""
import os

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["RAYON_RS_NUM_CPUS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import glob  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import tiktoken  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
WARM_RUNS = 5


def byte_decoder():
    keep = set(range(0x21, 0x7F)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    table, n = {}, 0
    for b in range(256):
        if b in keep:
            table[chr(b)] = b
        else:
            table[chr(0x100 + n)] = b
            n += 1
    return table


def tiktoken_for(path):
    """A tiktoken Encoding over the same vocabulary and pre-tokenizer regex."""
    spec = json.load(open(path, encoding="utf-8"))
    pre = spec["pre_tokenizer"]
    if pre["type"] == "ByteLevel":
        pattern = (r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
    else:
        pattern = pre["pretokenizers"][0]["pattern"]["Regex"]
    decode = byte_decoder()
    special = {t["content"] for t in spec["added_tokens"]}
    ranks = {bytes(decode[c] for c in tok): i for tok, i in spec["model"]["vocab"].items()
             if tok not in special}
    return tiktoken.Encoding("albion-bench", pat_str=pattern, mergeable_ranks=ranks,
                             special_tokens={})


def measure(name, encode, texts, mb):
    start = time.perf_counter()
    tokens = sum(len(encode(t)) for t in texts)
    cold = time.perf_counter() - start
    warm = []
    for _ in range(WARM_RUNS):
        start = time.perf_counter()
        for t in texts:
            encode(t)
        warm.append(time.perf_counter() - start)
    median = statistics.median(warm)
    print(f"{name}, 1 thread: cold {mb / cold:.1f} MB/s; warm median of {WARM_RUNS} "
          f"{mb / median:.1f} MB/s ({tokens / median / 1e6:.2f} M tokens/s)")


def main():
    path = (sys.argv[1] if len(sys.argv) > 1 else
            os.path.join(ROOT, "tests/runtime/tokenizers/fixtures/gpt2/tokenizer.json"))
    files = sys.argv[2:] or sorted(glob.glob(os.path.join(ROOT, "recipes/corpus/austen/*.txt")))
    texts = [open(f, encoding="utf-8").read() for f in files]
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    print(f"input: {len(files)} files, {mb:.2f} MB")

    hf = Tokenizer.from_file(path)
    hf.encode_special_tokens = True
    tt = tiktoken_for(path)
    for t in texts:
        if hf.encode(t, add_special_tokens=False).ids != tt.encode_ordinary(t):
            sys.exit("tiktoken and tokenizers disagree on the input; not comparable")
    paragraphs = []
    for t in texts:
        start = 0
        while start < len(t):
            blank = t.find("\n\n", start)
            end = len(t) if blank < 0 else blank + 2
            paragraphs.append(t[start:end])
            start = end
    for unit, inputs in (("whole files", texts), ("paragraphs", paragraphs)):
        measure(f"tokenizers ({unit})", lambda t: hf.encode(t, add_special_tokens=False).ids,
                inputs, mb)
        measure(f"tiktoken ({unit})", tt.encode_ordinary, inputs, mb)


if __name__ == "__main__":
    main()
