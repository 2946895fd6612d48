#!/usr/bin/env python3
"""Add up the per-program "N passed, M failed" lines of one or more meson
test logs (meson-logs/testlog.json) and print the total as the suite's last
line. A program that failed without printing its own line (a crash, a
sanitizer abort, a timeout) counts as one failure. Exits 1 on any failure."""
import json
import re
import sys

LINE = re.compile(r"^(\d+) passed, (\d+) failed", re.M)


def main(paths):
    passed = failed = 0
    for path in paths:
        label = path.split("/")[0]
        try:
            records = [json.loads(l) for l in open(path) if l.strip()]
        except OSError as e:
            print(f"summarize: {path}: {e.strerror}", file=sys.stderr)
            failed += 1
            continue
        for r in records:
            out = r.get("stdout") or ""
            counts = LINE.findall(out)
            ok = r.get("result") in ("OK", "EXPECTEDFAIL")
            if counts:
                p, f = map(int, counts[-1])
                if not ok and f == 0:
                    f = 1  # ran its checks, then crashed or leaked
            else:
                p, f = (1, 0) if ok else (0, 1)
            passed += p
            failed += f
            if f:
                print(f"{label}: {r.get('name')}: {r.get('result')} ({f} failed)")
    print(f"total: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
