#!/usr/bin/env python3
"""tests/fuzz/run_fuzz.py TARGET SEEDS WORK [--seconds S] [--jobs J]

Run one libFuzzer target for a fixed time and sort what it finds by where it
happened. The target runs in libFuzzer's fork mode (-fork=J with
-ignore_crashes, -ignore_timeouts and -ignore_ooms), so one finding does not
end the run: every crashing input is saved under WORK/artifacts, and the
growing corpus is kept in WORK/corpus (so the next run starts from it).

Afterwards each saved input is run again alone, and its sanitizer report is
classified by the top frame of its first stack, skipping the sanitizer
runtime, libFuzzer and libc:
  effdim   the frame is in effdim's code (lib/, or the harness itself: a
           loader broke a promise that tests/fuzz/fuzz.h checks). A memory
           error inside libhdf5 on a buffer that effdim allocated counts here
           too: the buffer was too small for what effdim asked HDF5 to do.
  libhdf5  the frame is in the HDF5 library (a crash HDF5 1.10 has on corrupt
           files); reported and counted, not failed.
Timeouts and out-of-memory stops are counted apart, with their top frame,
and do not fail the run either (per-input time limits on a loaded machine
are noise; bounded memory is tested by the loaders' own tests). Leaks with a
frame in libhdf5 are suppressed (tests/fuzz/lsan.supp says why).

Prints one line per finding, a summary line with the run's figures (execs,
seconds, corpus size) and, last, "N passed, M failed" for tests/summarize.py:
M is the number of distinct crashes in effdim's code (same kind, same top
frame; timeouts and ooms are grouped by function or, without one, by module).
Exits 1 when M > 0 or when the fuzzer did not run.

`run_fuzz.py --self-test` checks the classifier on made-up reports of each kind
(the fast suite runs it in every build).
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

FRAME = re.compile(r"^\s*#(\d+) 0x[0-9a-fA-F]+(?: in (\S+))?\s*(.*)$")
RUNTIME_FN = re.compile(
    r"^(__asan|__ubsan|__sanitizer|__interceptor|__lsan|__libc|__GI_|_start$|fuzzer::|"
    r"LLVMFuzzerRunDriver|main$|malloc$|calloc$|realloc$|free$|strdup$|strndup$|"
    r"mem(cpy|move|set|cmp|chr)$|str(len|nlen|cmp|ncmp|chr|rchr|str|cpy|ncpy)$|"
    r"raise$|abort$|gsignal$|__restore_rt$|__mem|__str|__wmem)")
# libc frames come symbolized by module (libc.so.6+0x..) or by glibc's own source path
RUNTIME_MODULE = re.compile(r"(libclang_rt|compiler-rt|/libc\.so|/libc-|/libstdc\+\+|/libgcc_s|"
                            r"^(string|stdlib|signal|nptl|csu|malloc|libio)/|sysdeps/)")
STATS = re.compile(r"^#(\d+):\s+cov: (\d+) ft: (\d+) corp: (\d+) exec/s:? (\d+) "
                   r"oom/timeout/crash: (\d+)/(\d+)/(\d+) time: (\d+)s", re.M)


def frames(lines):
    """(function, location) of each frame of the first stack in lines."""
    out, started = [], False
    for line in lines:
        m = FRAME.match(line)
        if m:
            started = True
            out.append((m.group(2) or "", m.group(3)))
        elif started:
            break
    return out


def first_own(fs):
    for fn, where in fs:
        if RUNTIME_FN.match(fn) or RUNTIME_MODULE.search(where):
            continue
        return fn, where
    return None


def in_hdf5(frame):
    fn, where = frame
    return fn.startswith("H5") or "libhdf5" in where


def classify(report):
    """(kind, place, frame text) for one sanitizer or libFuzzer report."""
    lines = report.splitlines()
    kind = "crash"
    start = 0
    for i, line in enumerate(lines):
        if "ERROR: libFuzzer: timeout" in line:
            kind, start = "timeout", i
            break
        if "ERROR: libFuzzer: out-of-memory" in line or "requested allocation size" in line \
                or "allocation-size-too-big" in line or "out of memory" in line:
            kind, start = "oom", i
            break
        if "ERROR: LeakSanitizer" in line:
            kind, start = "leak", i
            break
        if "ERROR: AddressSanitizer" in line or "runtime error:" in line \
                or "ERROR: libFuzzer: deadly signal" in line or "broken promise" in line:
            kind, start = "crash", i
            break
    rest = lines[start:]
    top = first_own(frames(rest))
    if top is None:
        return kind, "unknown", "(no frame outside the runtime)"
    place = "libhdf5" if in_hdf5(top) else "effdim"
    if place == "libhdf5" and kind == "crash":
        # a memory error in HDF5 on a buffer that effdim allocated is effdim's
        for j, line in enumerate(rest):
            if re.search(r"(allocated|freed) by thread", line):
                owner = first_own(frames(rest[j + 1:]))
                if owner is not None and not in_hdf5(owner):
                    place = "effdim"
                break
    return kind, place, f"{top[0] or '?'} {top[1]}".strip()


def sanitizer_env():
    env = dict(os.environ)
    # allocator_may_return_null: a huge malloc returns NULL as it does outside the
    # sanitizer (libFuzzer still reports any malloc above -rss_limit_mb as oom)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:symbolize=1:allocator_may_return_null=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:symbolize=1")
    supp = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lsan.supp")
    env.setdefault("LSAN_OPTIONS", f"suppressions={supp}:print_suppressions=0")
    sym = shutil.which("llvm-symbolizer")
    if sym:
        env.setdefault("ASAN_SYMBOLIZER_PATH", sym)
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target")
    ap.add_argument("seeds")
    ap.add_argument("work")
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=5, help="seconds per input (libFuzzer -timeout)")
    ap.add_argument("--rss-limit-mb", type=int, default=2048)
    a = ap.parse_args()
    name = os.path.basename(a.target)
    target = os.path.abspath(a.target)
    work = os.path.abspath(a.work)
    corpus = os.path.join(work, "corpus")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    arts = os.path.join(work, "artifacts", stamp)
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(arts, exist_ok=True)
    env = sanitizer_env()
    # The harnesses write one file per input, in memory rather than on a disk when
    # /dev/shm is there, and in a folder of this run's own: a job that crashes
    # cannot remove its folder, so the runner removes them all at the end.
    base = env.get("TMPDIR") or ("/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    env["TMPDIR"] = tempfile.mkdtemp(prefix="effdim-fuzz-run-", dir=base)
    try:
        return fuzz(a, name, target, work, corpus, arts, stamp, env)
    finally:
        shutil.rmtree(env["TMPDIR"], ignore_errors=True)


def fuzz(a, name, target, work, corpus, arts, stamp, env):
    limits = [f"-timeout={a.timeout}", f"-rss_limit_mb={a.rss_limit_mb}"]
    cmd = [target, f"-fork={a.jobs}", "-ignore_crashes=1", "-ignore_timeouts=1", "-ignore_ooms=1",
           f"-max_total_time={a.seconds}", f"-artifact_prefix={arts}/", *limits, corpus,
           os.path.abspath(a.seeds)]
    t0 = time.time()
    run = subprocess.run(cmd, env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, errors="replace")
    seconds = time.time() - t0
    with open(os.path.join(work, f"fuzz-{stamp}.log"), "w") as f:
        f.write(run.stdout)
    stats = STATS.findall(run.stdout)
    if not stats:
        print(f"{name}: the fuzzer did not run (exit {run.returncode}); its output:")
        print("\n".join("    " + l for l in run.stdout.splitlines()[-30:]))
        print("0 passed, 1 failed")
        return 1
    execs, cov, ft, corp = (int(stats[-1][i]) for i in range(4))

    found = {}  # (kind, place, frame) -> [artifact, ...]
    for path in sorted(glob.glob(os.path.join(arts, "*"))):
        rerun = subprocess.run([target, *limits, path], env=env, cwd=work, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, errors="replace")
        if rerun.returncode == 0:
            key = ("flaky", "unknown", "(passes when run alone)")
        else:
            key = classify(rerun.stdout)
            if key[0] in ("timeout", "oom"):  # a loop or an allocation: one per function
                key = (key[0], key[1], re.sub(r"\+0x[0-9a-fA-F]+\)", ")", key[2]))
        found.setdefault(key, []).append(path)
        with open(path + ".txt", "w") as f:
            f.write(rerun.stdout)

    count = {}
    for (kind, place, frame), paths in sorted(found.items()):
        label = kind if kind == "flaky" else f"{kind} in {place}"
        count[kind] = count.get(kind, 0) + 1
        print(f"{name}: {label}: {frame} ({len(paths)} input(s), e.g. {paths[0]}; report {paths[0]}.txt)")
    own = sorted(k for k in found if k[1] in ("effdim", "unknown") and k[0] in ("crash", "leak"))
    hdf5 = sorted(k for k in found if k[1] == "libhdf5" and k[0] in ("crash", "leak"))
    others = {k: n for k, n in count.items() if k in ("timeout", "oom", "flaky")}
    size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(corpus, "*")))
    line = (f"{name}: {execs} execs in {seconds:.0f} s ({execs / max(seconds, 1e-9):.0f}/s), "
            f"coverage {cov} edges {ft} features, corpus {corp} inputs "
            f"({len(os.listdir(corpus))} files, {size / 1024:.0f} KiB); "
            f"crashes in effdim: {len(own)}, in libhdf5: {len(hdf5)}")
    for k, v in sorted(others.items()):
        line += f"; {k}: {v}"
    print(line)
    if not found:
        shutil.rmtree(arts, ignore_errors=True)
    print(f"{0 if own else 1} passed, {len(own)} failed")
    return 1 if own else 0


# Made-up reports in the sanitizers' layout, and the verdict each must get.
SELF_TEST = [
    ("a heap overflow in lib/ is effdim's", ("crash", "effdim"), """
==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6020 at pc 0x55 bp 0x7f sp 0x7f
READ of size 8 at 0x6020 thread T0
    #0 0x55d0 in read_rows /src/lib/data_h5.c:120:9
    #1 0x55d1 in effdim_load_h5 /src/lib/data_h5.c:200:5
    #2 0x55d2 in LLVMFuzzerTestOneInput /src/tests/fuzz/fuzz_h5_data.c:20:3
    #3 0x55d3 in fuzzer::Fuzzer::ExecuteCallback(unsigned char const*, unsigned long) (/b/fuzz+0x9)
"""),
    ("a memcpy from lib/ is effdim's, past the interceptor", ("crash", "effdim"), """
==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6020
WRITE of size 16 at 0x6020 thread T0
    #0 0x55a0 in __asan_memcpy (/b/fuzz+0xf5)
    #1 0x55a1 in parse_header /src/lib/data_idx.c:190:5
"""),
    ("a crash inside libhdf5 on its own memory is libhdf5's", ("crash", "libhdf5"), """
==1==ERROR: AddressSanitizer: SEGV on unknown address 0x000000000010
    #0 0x7f10 in H5F__accum_read (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x1233e4)
    #1 0x7f11  (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x1234)
    #2 0x55b2 in effdim_h5_read_doubles /src/lib/h5io.c:400:9
"""),
    ("an overflow inside libhdf5 of a buffer effdim allocated is effdim's", ("crash", "effdim"), """
==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6020
WRITE of size 64 at 0x6020 thread T0
    #0 0x55a0 in __asan_memcpy (/b/fuzz+0xf5)
    #1 0x7f10 in H5VM_memcpyvv (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x2a0)
    #2 0x7f11 in H5Dread (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x1f0)
    #3 0x55b2 in effdim_h5_read_doubles /src/lib/h5io.c:400:9
0x6020 is located 0 bytes to the right of 8-byte region
allocated by thread T0 here:
    #0 0x55a9 in malloc (/b/fuzz+0xf5fee)
    #1 0x55c0 in effdim_alloc /src/lib/status.c:60:15
    #2 0x55c1 in read_model /src/lib/checkpoint.c:900:7
"""),
    ("an undefined shift in lib/ is effdim's", ("crash", "effdim"), """
/src/lib/data_idx.c:77:20: runtime error: left shift of 255 by 24 places cannot be represented in type 'int'
    #0 0x55e0 in be32 /src/lib/data_idx.c:77:20
    #1 0x55e1 in read_header /src/lib/data_idx.c:190:5
"""),
    ("a broken promise in the harness is effdim's", ("crash", "effdim"), """
fuzz: broken promise at ../tests/fuzz/fuzz_common.c:95: a refusal without a message
==1==ERROR: AddressSanitizer: ABRT on unknown address 0x0001 (pc 0x7f00 bp 0x1 sp 0x7ff T0)
    #0 0x7f00 in __pthread_kill_implementation nptl/pthread_kill.c:44:76
    #1 0x7f01 in raise signal/../sysdeps/posix/raise.c:26:13
    #2 0x7f02 in abort stdlib/abort.c:79:7
    #3 0x55f0 in fuzz_fail /src/tests/fuzz/fuzz_common.c:57:5
"""),
    ("a leak from lib/ is effdim's", ("leak", "effdim"), """
==1==ERROR: LeakSanitizer: detected memory leaks
Direct leak of 56 byte(s) in 1 object(s) allocated from:
    #0 0x55a9 in malloc (/b/fuzz+0xf5fee)
    #1 0x55c0 in effdim_strdup /src/lib/status.c:80:15
"""),
    ("a leak HDF5 allocated is libhdf5's", ("leak", "libhdf5"), """
==1==ERROR: LeakSanitizer: detected memory leaks
Direct leak of 56 byte(s) in 1 object(s) allocated from:
    #0 0x55a9 in malloc (/b/fuzz+0xf5fee)
    #1 0x7f28  (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x1233e4) (BuildId: e9)
"""),
    ("glibc's memcpy symbolized by its source is skipped: a crash inside libhdf5", ("crash", "libhdf5"), """
==1==ERROR: AddressSanitizer: SEGV on unknown address 0x61a000010ed8 (pc 0x7f4c bp 0x7ffd sp 0x7ffd T0)
    #0 0x7f4c in __memcpy_avx_unaligned_erms string/../sysdeps/x86_64/multiarch/memmove-vec-unaligned-erms.S:350
    #1 0x557f in __interceptor_memcpy (/b/fuzz+0x96527) (BuildId: 87)
    #2 0x7f4d  (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x190f18) (BuildId: e9)
    #3 0x7f4e in H5Aexists (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x5c350) (BuildId: e9)
    #4 0x557f in attr_open /src/lib/h5io.c:240:9
"""),
    ("a timeout inside ASan's free called by HDF5 is libhdf5's", ("timeout", "libhdf5"), """
==1== ERROR: libFuzzer: timeout after 6 seconds
    #0 0x55e2 in __sanitizer_print_stack_trace (/b/fuzz+0x109091)
    #1 0x55e2 in fuzzer::PrintStackTrace() (/b/fuzz+0x7b9e8)
    #2 0x55e2 in fuzzer::Fuzzer::AlarmCallback() (/b/fuzz+0x61229)
    #3 0x7fe8  (/lib/x86_64-linux-gnu/libc.so.6+0x3c04f) (BuildId: 93)
    #4 0x7fe8 in __memset_avx2_unaligned_erms string/../sysdeps/x86_64/multiarch/memset-vec-unaligned-erms.S:335
    #5 0x55e2 in __asan::Allocator::QuarantineChunk(__asan::AsanChunk*, void*) (/b/fuzz+0x82dc6)
    #6 0x55e2 in __interceptor_free (/b/fuzz+0xfed65)
    #7 0x7fe8 in H5FL_blk_free (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x1237ff)
"""),
    ("a timeout is a timeout, placed by its frame", ("timeout", "libhdf5"), """
==1== ERROR: libFuzzer: timeout after 5 seconds
    #0 0x55a0 in __sanitizer_print_stack_trace (/b/fuzz+0x12)
    #1 0x55a1 in fuzzer::PrintStackTrace() (/b/fuzz+0x13)
    #2 0x7f00  (/lib/x86_64-linux-gnu/libc.so.6+0x3bf8f)
    #3 0x7f10 in H5C_protect (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x8d9c9)
"""),
    ("a huge allocation is an oom, placed by its frame", ("oom", "effdim"), """
==1==ERROR: AddressSanitizer: requested allocation size 0x1ec000000068 exceeds maximum supported size
    #0 0x55a9 in __interceptor_calloc (/b/fuzz+0x12e4d8)
    #1 0x55c0 in effdim_calloc /src/lib/status.c:76:15
"""),
]


def self_test():
    failed = 0
    for name, want, report in SELF_TEST:
        got = classify(report)[:2]
        if got == want:
            print(f"ok - {name}")
        else:
            failed += 1
            print(f"FAIL - {name}\n    got {got}, want {want}")
    print(f"{len(SELF_TEST) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(self_test() if sys.argv[1:] == ["--self-test"] else main())
