#!/usr/bin/env bash
# tests/test_sweep_cli.sh: `effdim sweep` end to end: kill -9 at random
# moments and resume (the file readable by h5py after every kill and while
# the sweep runs, the resumed table equal to an uninterrupted one), the lock
# naming the other run, two --shard processes merged into the whole, the
# SLURM array variables and docs/examples/sweep.sbatch as two array tasks,
# --jobs (and a killed --jobs parent), merge refusing another config, config errors
# naming the file and the key; `effdim inspect` of a sweep file against h5py, and
# `effdim sweep stats` against Spearman's rho computed in Python.
#
#   bash tests/test_sweep_cli.sh path/to/effdim
. "$(cd "$(dirname "$0")" && pwd)/cli_lib.sh"
cli_setup test_sweep_cli.sh effdim-sweep-cli "$@"

PY=/usr/bin/python3
if ! $PY -c "import h5py" 2>/dev/null; then PY=""; fi

cat >grid.json <<'EOF'
{"data": "spirals:n=300,seed=3", "test": "spirals:n=200,seed=4",
 "widths": [2, 3, 4, 6, 8, 12, 16], "seeds": [1, 2],
 "train": {"epochs": 60, "batch": 30, "lr": 0.02},
 "curvature": {"k": 6, "z": [0.01, 0.1, 1], "probes": 6}}
EOF

# rows.py FILE: one line per row (index and every number but the times), sorted
cat >rows.py <<'EOF'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
t = f["sweep/table"][()]
skip = {"seconds", "seconds_train", "seconds_curvature", "seconds_lanczos", "seconds_slq"}
names = [n for n in t.dtype.names if n not in skip]
for r in sorted(t, key=lambda r: r["index"]):
    print(" ".join(repr(r[n]) for n in names))
print("config", f["sweep"].attrs["config_canonical"], f.attrs["grid_size"])
EOF

"$EFFDIM" sweep grid.json -o ref.h5 --threads 1 >ref.out 2>ref.err
rc=$?
if [ $rc -eq 0 ] && grep -q "14 configurations, 0 already done, 14 run (0 failed, 0 partial)" ref.out; then
    ok "a sweep of 14 configurations runs to the end ($(cat ref.out))"
else
    fail "a sweep of 14 configurations runs to the end" "exit $rc" "$(cat ref.out ref.err)"
fi
if grep -q "sweep 14/14 config 14/14 done (width 16: ok" ref.err; then
    ok "the progress line names the configuration ($(tail -1 ref.err))"
else
    fail "the progress line names the configuration" "$(tail -3 ref.err)"
fi

"$EFFDIM" sweep grid.json -o ref.h5 --threads 1 >again.out 2>&1
if grep -q "14 already done, 0 run" again.out; then
    ok "rerunning a finished sweep skips every row"
else
    fail "rerunning a finished sweep skips every row" "$(cat again.out)"
fi

if [ -n "$PY" ]; then
    $PY rows.py ref.h5 >ref.rows 2>&1
    if [ "$(wc -l <ref.rows)" -eq 15 ]; then
        ok "h5py reads /sweep/table: 14 rows"
    else
        fail "h5py reads /sweep/table: 14 rows" "$(cat ref.rows)"
    fi
fi

# kill -9 at random moments, then resume; after each kill the file is a complete sweep file.
# The moments are random fractions of the reference run's time (up to an eighth of it),
# so the kills land inside the run on a fast or a loaded machine; a round whose run ended
# before its kill (exit status not 137) does not count, and the next round starts afresh,
# until 6 kills have landed (at most 40 rounds).
t_ref=$( { /usr/bin/time -f %e "$EFFDIM" sweep grid.json -o timing.h5 --threads 1 >/dev/null 2>/dev/null; } 2>&1 | tail -1)
ms_ref=$(awk -v t="${t_ref:-2}" 'BEGIN { printf "%d", t * 1000 }')
RANDOM=20261202
kills=0
bad=()
for round in $(seq 40); do
    [ $kills -ge 6 ] && break
    "$EFFDIM" sweep grid.json -o killed.h5 --threads 1 >/dev/null 2>&1 &
    pid=$!
    ms=$((RANDOM % (ms_ref / 8 + 1) + 20))
    sleep "$(awk -v m=$ms 'BEGIN { printf "%.3f", m / 1000 }')"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rc=$?
    [ $rc -eq 137 ] && kills=$((kills + 1))
    if [ -e killed.h5 ]; then
        if [ -n "$PY" ]; then
            $PY -c "import h5py; f = h5py.File('killed.h5', 'r'); t = f['sweep/table'][()]; print(len(t))" \
                >k.txt 2>&1 || bad+=("round $round: h5py cannot read the file: $(cat k.txt)")
        fi
        "$EFFDIM" sweep merge killed.h5 -o killed-check.h5 >k2.txt 2>&1 ||
            bad+=("round $round: effdim cannot read the file: $(cat k2.txt)")
        rm -f killed-check.h5
    fi
    [ $rc -eq 137 ] || rm -f killed.h5 # the run finished before its kill: start afresh
done
"$EFFDIM" sweep grid.json -o killed.h5 --threads 1 >resume.out 2>&1
if [ ${#bad[@]} -eq 0 ] && [ $kills -ge 4 ] && grep -q "14 configurations" resume.out; then
    ok "after $kills kill -9 at random moments the file stays readable and the sweep resumes ($(cat resume.out))"
else
    fail "after kill -9 at random moments the file stays readable and the sweep resumes" "kills: $kills" \
        "${bad[@]}" "$(cat resume.out)"
fi
if compgen -G "killed.h5.tmp-*" >/dev/null || compgen -G ".killed.h5.effdim-lock" >/dev/null; then
    fail "no temporary or lock file of the killed runs is left" "$(ls -a)"
else
    ok "no temporary or lock file of the killed runs is left"
fi
if [ -n "$PY" ]; then
    $PY rows.py killed.h5 >killed.rows 2>&1
    if cmp -s ref.rows killed.rows; then
        ok "the resumed table equals the uninterrupted one (every number but the times)"
    else
        fail "the resumed table equals the uninterrupted one" "$(diff ref.rows killed.rows | head -5)"
    fi
fi

# h5py reads the file while the sweep appends to it
if [ -n "$PY" ]; then
    $PY - "$EFFDIM" >live.txt 2>&1 <<'EOF'
import subprocess, sys, time, h5py, os
run = subprocess.Popen([sys.argv[1], "sweep", "grid.json", "-o", "live.h5", "--threads", "1"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
reads, errors, counts = 0, [], set()
while True:
    done = run.poll() is not None
    if os.path.exists("live.h5"):
        try:
            with h5py.File("live.h5", "r") as f:
                counts.add(len(f["sweep/table"][()]))
            reads += 1
        except Exception as e:
            errors.append(repr(e))
    if done:
        break
    time.sleep(0.01)
print(reads, len(errors), len(counts), run.returncode, errors[:2])
EOF
    read -r reads errors distinct _ <live.txt
    if [ "${errors:-1}" -eq 0 ] && [ "${distinct:-0}" -ge 3 ]; then
        ok "h5py reads the table while it grows ($reads reads, $distinct different lengths, 0 errors)"
    else
        fail "h5py reads the table while it grows" "$(cat live.txt)"
    fi
fi

# the lock names the other run
"$EFFDIM" sweep grid.json -o locked.h5 --threads 1 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 50); do [ -e .locked.h5.effdim-lock ] && break; sleep 0.05; done
"$EFFDIM" sweep grid.json -o locked.h5 --threads 1 >lock.out 2>lock.err
rc=$?
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
if [ $rc -eq 1 ] && grep -q "another effdim run (PID $pid)" lock.err && [ "$(wc -l <lock.err)" -eq 1 ]; then
    ok "a second sweep into the same file is refused naming the first ($(cat lock.err))"
else
    fail "a second sweep into the same file is refused naming the first" "exit $rc" "$(cat lock.err)"
fi

# two shards in parallel, merged
"$EFFDIM" sweep grid.json -o shard0.h5 --shard 0/2 --threads 1 >s0.out 2>&1 &
p0=$!
"$EFFDIM" sweep grid.json -o shard1.h5 --shard 1/2 --threads 1 >s1.out 2>&1 &
p1=$!
wait $p0
r0=$?
wait $p1
r1=$?
"$EFFDIM" sweep merge shard1.h5 shard0.h5 -o merged.h5 >merge.out 2>&1
rm=$?
if [ $r0 -eq 0 ] && [ $r1 -eq 0 ] && [ $rm -eq 0 ] && grep -q "7 configurations" s0.out &&
    grep -q "14 of 14 configurations from 2 files" merge.out; then
    ok "two --shard processes run 7 configurations each and merge into 14"
else
    fail "two --shard processes run 7 configurations each and merge into 14" "$(cat s0.out s1.out merge.out)"
fi
if [ -n "$PY" ]; then
    $PY rows.py merged.h5 >merged.rows 2>&1
    if cmp -s ref.rows merged.rows; then
        ok "the merged shards equal the single run"
    else
        fail "the merged shards equal the single run" "$(diff ref.rows merged.rows | head -5)"
    fi
fi

# SLURM's array variables pick the shard; --shard overrides them
SLURM_ARRAY_TASK_ID=5 SLURM_ARRAY_TASK_MIN=4 SLURM_ARRAY_TASK_COUNT=2 \
    "$EFFDIM" sweep grid.json -o slurm.h5 --threads 1 --limit 1 >slurm.out 2>&1
if grep -q "shard 1/2: 7 configurations, 0 already done, 1 run" slurm.out; then
    ok "SLURM_ARRAY_TASK_ID - MIN of COUNT is the shard ($(cat slurm.out))"
else
    fail "SLURM_ARRAY_TASK_ID - MIN of COUNT is the shard" "$(cat slurm.out)"
fi
SLURM_ARRAY_TASK_ID=7 SLURM_ARRAY_TASK_COUNT=2 "$EFFDIM" sweep grid.json -o slurm2.h5 >slurm2.out 2>slurm2.err
rc=$?
if [ $rc -eq 2 ] && grep -q "SLURM_ARRAY_TASK_ID=7" slurm2.err; then
    ok "SLURM variables out of range are a usage error ($(cat slurm2.err))"
else
    fail "SLURM variables out of range are a usage error" "exit $rc" "$(cat slurm2.err)"
fi
"$EFFDIM" sweep grid.json -o slurm.h5 --shard 0/2 --threads 1 >slurm3.out 2>slurm3.err
rc=$?
if [ $rc -eq 1 ] && grep -q "holds shard 1/2, not 0/2" slurm3.err; then
    ok "a file of another shard is refused ($(cat slurm3.err))"
else
    fail "a file of another shard is refused" "exit $rc" "$(cat slurm3.err)"
fi

# docs/examples/sweep.sbatch as SLURM runs it: two array tasks (variables set by hand), merged
SBATCH_SCRIPT="$CLI_LIB_DIR/../docs/examples/sweep.sbatch"
mkdir -p array && cp grid.json array/ && (
    cd array || exit 1
    for task in 0 1; do
        EFFDIM="$EFFDIM" SLURM_ARRAY_TASK_ID=$task SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_COUNT=2 \
            SLURM_CPUS_PER_TASK=1 bash "$SBATCH_SCRIPT" grid.json >"task$task.out" 2>&1 || exit 1
    done
    "$EFFDIM" sweep merge sweep-*.h5 -o sweep.h5 >merge.out 2>&1
) && grep -q "14 of 14 configurations from 2 files" array/merge.out
rc=$?
if [ $rc -eq 0 ] && { [ -z "$PY" ] || { $PY rows.py array/sweep.h5 >array.rows 2>&1 && cmp -s ref.rows array.rows; }; }; then
    ok "docs/examples/sweep.sbatch as two array tasks, merged, gives the single run's table"
else
    fail "docs/examples/sweep.sbatch as two array tasks, merged, gives the single run's table" \
        "$(cat array/*.out 2>/dev/null | tail -5)"
fi

# --jobs: worker processes, the same rows
"$EFFDIM" sweep grid.json -o jobs.h5 --jobs 2 --threads 1 >jobs.out 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "14 run" jobs.out; then
    ok "--jobs 2 runs the sweep in two worker processes"
else
    fail "--jobs 2 runs the sweep in two worker processes" "exit $rc" "$(cat jobs.out)"
fi
if [ -n "$PY" ]; then
    $PY rows.py jobs.h5 >jobs.rows 2>&1
    if cmp -s ref.rows jobs.rows; then
        ok "--jobs 2 gives the rows of one process"
    else
        fail "--jobs 2 gives the rows of one process" "$(diff ref.rows jobs.rows | head -5)"
    fi
fi

# the figure: a PNG from the table, and a width x depth grid with heat maps
if command -v gnuplot >/dev/null; then
    "$EFFDIM" sweep plot merged.h5 -o dd.png >plot.out 2>&1
    rc=$?
    if [ $rc -eq 0 ] && [ "$(head -c 4 dd.png | od -An -c | tr -d ' ')" = "211PNG" ]; then
        ok "sweep plot draws the double-descent figure ($(cat plot.out))"
    else
        fail "sweep plot draws the double-descent figure" "exit $rc" "$(cat plot.out)"
    fi
    cat >grid2.json <<'EOF2'
{"data": "spirals:n=100,seed=3", "widths": [2, 4, 8], "depths": [1, 2], "train": {"epochs": 3},
 "curvature": {"k": 3, "slq": false}}
EOF2
    "$EFFDIM" sweep grid2.json -o grid2.h5 --threads 1 >/dev/null 2>&1 &&
        "$EFFDIM" sweep plot grid2.h5 -o heat.png >plot2.out 2>&1
    rc=$?
    if [ $rc -eq 0 ] && [ -s heat.png ]; then
        ok "a width x depth grid adds heat maps ($(cat plot2.out))"
    else
        fail "a width x depth grid adds heat maps" "exit $rc" "$(cat plot2.out)"
    fi
    GUARD=grid2.h5
    cp grid2.h5 grid2.ref
    GUARD_REF=grid2.ref
    expect_refusal "sweep plot of a file that is not a sweep is refused" "not an effdim.sweep file" -- \
        "$EFFDIM" sweep plot "$FIX/../fixtures/$(ls "$FIX" | grep -m1 '\.h5$')" -o bad.png
fi

# inspect recognises a sweep: the config, the rows by status, the table
"$EFFDIM" inspect merged.h5 >insp.out 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "^kind        effdim.sweep (version 1), shard 0/1 of a grid of 14 configurations" insp.out &&
    grep -q "^grid        7 widths \[2, 3, 4, 6, 8, 12, 16\] x 1 depth \[1\] x 2 seeds \[1, 2\] = 14 configurations" insp.out &&
    grep -q "^rows        14 of 14: 14 ok, 0 partial, 0 failed, 0 not run yet" insp.out; then
    ok "inspect names a sweep file, its config and its rows by status"
else
    fail "inspect names a sweep file, its config and its rows by status" "exit $rc" "$(head -12 insp.out)"
fi
if [ -n "$PY" ]; then
    # the table's test loss and N_eff(z=0.1) Ritz, row by row, as h5py reads them
    $PY -c "
import h5py
t = sorted(h5py.File('merged.h5')['sweep/table'][()], key=lambda r: r['index'])
for r in t: print(r['index'], r['width'], r['n_params'], '%.4f' % r['test_loss'], '%.4g' % r['n_eff_ritz_0'])
" >insp.want 2>&1
    awk '$1 ~ /^[0-9]+$/ && NF >= 12 {print $1, $2, $6, $8, $10}' insp.out >insp.got
    if [ -s insp.want ] && diff -q insp.want insp.got >/dev/null; then
        ok "inspect's table holds the rows h5py reads (14 lines)"
    else
        fail "inspect's table holds the rows h5py reads" "$(diff insp.want insp.got | head -5)"
    fi
fi
"$EFFDIM" inspect merged.h5 --json >insp.json 2>&1
if grep -q '"kind":	"effdim.sweep"' insp.json && grep -q '"ok":	14' insp.json; then
    ok "inspect --json of a sweep file"
else
    fail "inspect --json of a sweep file" "$(head -20 insp.json)"
fi

# sweep stats: the peak and Spearman's rho, against a ranking done in Python
"$EFFDIM" sweep stats merged.h5 >stats.out 2>&1 && "$EFFDIM" sweep stats merged.h5 --json >stats.json 2>&1 &&
    "$EFFDIM" sweep stats merged.h5 --from-width 4 --json >stats4.json 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "^series depth 1, n_train 300" stats.out && grep -q "test-loss peak" stats.out &&
    grep -q "^    n_params " stats.out; then
    ok "sweep stats prints the series, its peak and the correlations"
else
    fail "sweep stats prints the series, its peak and the correlations" "exit $rc" "$(cat stats.out)"
fi
if [ -n "$PY" ]; then
    cat >spearman.py <<'EOF2'
import h5py, json, math, sys
t = [r for r in h5py.File(sys.argv[1])["sweep/table"][()] if r["status"] != b"failed"]
s = json.load(open(sys.argv[2]))["series"][0]
widths = sorted({int(r["width"]) for r in t})
mean = {w: sum(r["test_loss"] for r in t if r["width"] == w) / sum(1 for r in t if r["width"] == w) for w in widths}
interp = next((w for w in widths if all(r["train_error"] == 0 for r in t if r["width"] == w)), None)
low = min((w for w in widths if interp is None or w <= interp), key=lambda w: mean[w])
after = [w for w in widths if w > low]
peak = max(after, key=lambda w: mean[w]) if after else low
s4 = json.load(open(sys.argv[3]))["series"][0]
rows = [r for r in t if r["width"] >= 4]
def ranks(v):  # average ranks of ties
    order = sorted(range(len(v)), key=lambda i: v[i]); r = [0.0] * len(v); i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]: j += 1
        for q in range(i, j + 1): r[order[q]] = (i + j) / 2 + 1
        i = j + 1
    return r
def rho(a, b):
    ra, rb = ranks(a), ranks(b); ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    c = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return c / math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))
loss = [float(r["test_loss"]) for r in rows]
want = [rho([float(r["n_params"]) for r in rows], loss)]
want += [rho([float(r["n_eff_ritz_%d" % j]) for r in rows], loss) for j in range(3)]
want += [rho([float(r["n_eff_slq_%d" % j]) for r in rows], loss) for j in range(3)]
got = [s4["rho_params"]] + s4["rho_ritz"] + s4["rho_slq"]
tm = json.load(open(sys.argv[2]))["time"]
sums = [sum(float(r[c]) for r in t) for c in ("seconds", "seconds_train", "seconds_lanczos", "seconds_slq")]
got_t = [tm["seconds"], tm["seconds_train"], tm["seconds_lanczos"], tm["seconds_slq"]]
ok = all(abs(g - w) <= 1e-9 * abs(w) for g, w in zip(got_t, sums)) and tm["rows"] == len(t)
ok = ok and s["peak_width"] == peak and s4["peak_width"] == peak and s4["from_width"] == 4 and s4["n_rows"] == len(rows) and all(abs(g - w) < 1e-12 for g, w in zip(got, want))
print("peak", peak, "rows from width 4", len(rows), "rho", ["%.6f" % w for w in want], "effdim", ["%.6f" % g for g in got])
sys.exit(0 if ok else 1)
EOF2
    if $PY spearman.py merged.h5 stats.json stats4.json >sp.out 2>&1; then
        ok "sweep stats: the peak, every rho and the time sums equal Python's ($(cat sp.out))"
    else
        fail "sweep stats: the peak, every rho and the time sums equal Python's" "$(cat sp.out)"
    fi
fi

# kill -9 of a --jobs parent takes its workers (and so the lock) along
"$EFFDIM" sweep grid.json -o jobs-killed.h5 --jobs 2 --threads 1 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do [ -e .jobs-killed.h5.effdim-lock ] && break; sleep 0.02; done
sleep 0.3
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
sleep 0.3
"$EFFDIM" sweep grid.json -o jobs-killed.h5 --jobs 2 --threads 1 >jk.out 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "14 configurations" jk.out; then
    ok "a killed --jobs run leaves no worker holding the lock; the rerun completes ($(cat jk.out))"
else
    fail "a killed --jobs run leaves no worker holding the lock" "exit $rc" "$(cat jk.out)"
fi

# a table that does not fit its grid is refused
if [ -n "$PY" ]; then
    cp ref.h5 shrunk.h5
    $PY -c "import h5py; h5py.File('shrunk.h5', 'r+').attrs['grid_size'] = 3"
    "$EFFDIM" sweep plot shrunk.h5 -o shrunk.png >sh.out 2>sh.err
    rc=$?
    if [ $rc -eq 1 ] && grep -q "shrunk.h5: /sweep/table: expected a 1-D table of at most grid_size" sh.err; then
        ok "a table with more rows than its grid is refused ($(cat sh.err))"
    else
        fail "a table with more rows than its grid is refused" "exit $rc" "$(cat sh.err)"
    fi
fi

# merge refuses another config; errors name the file and the key
sed 's/"epochs": 60/"epochs": 61/' grid.json >other.json
"$EFFDIM" sweep other.json -o other.h5 --threads 1 --limit 1 >/dev/null 2>&1
GUARD=merged.h5
cp merged.h5 merged.ref
GUARD_REF=merged.ref
expect_refusal "merge refuses shards of another config" "other.h5: a shard of another config" -- \
    "$EFFDIM" sweep merge shard0.h5 other.h5 -o merged.h5
expect_refusal "another config into an existing file is refused" "holds a sweep of another config" -- \
    "$EFFDIM" sweep other.json -o merged.h5
echo '{"data": "spirals", "widths": [4], "train": {"epochz": 3}}' >typo.json
expect_refusal "an unknown key is named with the file" "typo.json: unknown key 'train.epochz'" -- \
    "$EFFDIM" sweep typo.json -o merged.h5
echo '{"data": "spirals", "widths": "4"}' >type.json
expect_refusal "a wrong type is named with the file" "type.json: key 'widths': expected a non-empty array" -- \
    "$EFFDIM" sweep type.json -o merged.h5
expect_refusal "a bad --shard is a usage error" "--shard: expected I/N" -- \
    "$EFFDIM" sweep grid.json --shard 2/2 -o merged.h5
expect_refusal "an unknown preset is refused" "unknown preset 'slow'" -- \
    "$EFFDIM" sweep --preset slow -o merged.h5

cli_finish
