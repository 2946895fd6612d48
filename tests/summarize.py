#!/usr/bin/env python3
"""Add up the per-program "N passed, M failed" lines of one or more meson
test logs (meson-logs/testlog.json) and print the total as the suite's last
line. A program that failed without printing its own line (a crash, a
sanitizer abort, a timeout) counts as one failure, and so does one that
reports "0 passed, 0 failed". A test meson expected to fail (should_fail) and
that failed counts as one pass. A skipped test (exit 77: what it needs is not
installed) counts as neither: it is listed, and the total names the skips. Exits 1 on any failure, and when no test at
all was counted (an empty or missing log proves nothing)."""
import json
import re
import sys

LINE = re.compile(r"^(\d+) passed, (\d+) failed", re.M)


def main(paths):
    passed = failed = skipped = 0
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
            if r.get("result") == "SKIP":
                skipped += 1
                why = [l for l in out.splitlines() if l.startswith("SKIP")]
                print(f"{label}: {r.get('name')}: SKIP{(' (' + why[-1] + ')') if why else ''}")
                continue
            if r.get("result") == "EXPECTEDFAIL":
                p, f = 1, 0  # its own lines report the failure it was meant to show
            elif counts:
                p, f = map(int, counts[-1])
                if (not ok or p == 0) and f == 0:
                    f = 1  # ran its checks, then crashed or leaked; or ran none
            else:
                p, f = (1, 0) if ok else (0, 1)
            passed += p
            failed += f
            if f:
                print(f"{label}: {r.get('name')}: {r.get('result')} ({f} failed)")
    if passed + failed == 0:
        print("summarize: no test was counted")
        failed = 1
    print(f"total: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
