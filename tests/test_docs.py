#!/usr/bin/env python3
"""tests/test_docs.py [REPO]: no doc cites a file that is not in the repository.

Reads README.md and docs/*.md and checks that
  - every relative Markdown link [text](path) names a file or folder that
    exists (relative to the document; an #anchor is ignored), and
  - every `path` in backticks, and every word of a fenced code block, whose
    first component is one of the repository's top-level folders (lib/,
    tools/, tests/, docs/, ...) exists (relative to the repository). Paths with a placeholder (<...>, *, {...},
    $VAR) are patterns, not files, and are skipped; so are trailing
    punctuation and a ":LINE" or " LINE-LINE" suffix. A prefix of existing
    files (an output prefix such as docs/img/diag-fashion-mnist) counts as
    there. A file in another repository is written repo:path.
One "ok - DOC" or "FAIL - DOC" line per document with each missing path
below it, then "N passed, M failed"; exits 1 on any failure.
"""
import glob
import os
import re
import sys
import tempfile

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
TICK = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def missing_in(doc, repo, tops):
    text = open(doc, encoding="utf-8").read()
    here = os.path.dirname(doc)
    out = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http:, mailto:, an anchor in the same document
        path = target.split("#", 1)[0]
        if path and not os.path.exists(os.path.join(here, path)):
            out.append(f"link ({target})")
    # backticked paths, and the words of fenced code (commands), each word by itself
    words = [t.split()[0] for t in TICK.findall(FENCE.sub("", text)) if t.split()]
    for block in FENCE.findall(text):
        words += block.split()
    for word in words:
        word = word.strip("'\"")
        if "/" not in word or re.search(r"[<>*{}$]", word):
            continue
        word = re.sub(r":\d+(-\d+)?$", "", word).rstrip(".,;:)")
        first = word.split("/", 1)[0]
        if first not in tops:
            continue
        full = os.path.join(repo, word)
        if not os.path.exists(full) and not glob.glob(glob.escape(full) + "?*"):
            out.append(f"`{word}`")  # (a prefix of existing files, e.g. --plot-prefix, is fine)
    return out


def checker_finds_what_is_missing():
    """The checker itself, on a made-up repository: what is missing is found, what is there is not."""
    with tempfile.TemporaryDirectory() as repo:
        os.makedirs(os.path.join(repo, "docs"))
        os.makedirs(os.path.join(repo, "lib"))
        open(os.path.join(repo, "lib", "there.c"), "w").close()
        open(os.path.join(repo, "docs", "img-a.png"), "w").close()
        doc = os.path.join(repo, "docs", "x.md")
        with open(doc, "w") as f:
            f.write("[ok](../lib/there.c) [gone](gone.md#part) [web](https://example.org/a/b) [here](#top)\n"
                    "`lib/there.c:12`, `lib/gone.c`, `lib/*.c`, `build/tools/effdim`, `other/repo:lib/x.c`\n"
                    "prefix `docs/img-`\n```\nbash lib/there.c lib/missing.sh --out build/x\n```\n")
        tops = {"docs", "lib"}
        got = sorted(set(missing_in(doc, repo, tops)))
        want = ["`lib/gone.c`", "`lib/missing.sh`", "link (gone.md#part)"]
        return got == want, got


def main(argv):
    ok, got = checker_finds_what_is_missing()
    if not ok:
        print(f"FAIL - the checker finds exactly the missing files of a made-up repository\n    got {got}")
        print("0 passed, 1 failed")
        return 1
    repo = os.path.abspath(argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    tops = {d for d in os.listdir(repo) if os.path.isdir(os.path.join(repo, d)) and not d.startswith(".")
            and not d.startswith("build")}
    docs = [os.path.join(repo, "README.md")] + sorted(glob.glob(os.path.join(repo, "docs", "*.md")))
    print("ok - the checker finds exactly the missing files of a made-up repository")
    passed, failed = 1, 0
    for doc in docs:
        miss = sorted(set(missing_in(doc, repo, tops)))
        name = os.path.relpath(doc, repo)
        if miss:
            failed += 1
            print(f"FAIL - {name} cites only files that exist")
            for m in miss:
                print(f"    missing: {m}")
        else:
            passed += 1
            print(f"ok - {name} cites only files that exist")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
