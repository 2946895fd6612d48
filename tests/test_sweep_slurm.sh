#!/usr/bin/env bash
# tests/test_sweep_slurm.sh (slow suite): a sweep as a job array on a real SLURM.
#
# Starts Debian's slurm-wlm on this machine alone: a slurm.conf in a temporary
# folder (this host as the controller and as the one compute node with 2 CPUs,
# proctrack/linuxproc, task/none, select/cons_tres, its state and spool in the
# folder, ports picked at random; auth/none when this SLURM has it, else
# auth/munge with a munged started here on its own key and socket), then
# slurmctld and slurmd in the foreground (-D) in the background. It submits
# docs/examples/sweep.sbatch as `sbatch --array=0-1` over a tiny config, waits
# for both tasks (at most 300 s), merges the two shard files with
# `effdim sweep merge`, and checks the merged table against one uninterrupted
# run of the same config. The daemons (and munged) are stopped by their PIDs
# on every way out (trap). Without slurm-wlm installed the test is skipped
# (exit 77, which meson counts as a skip).
#
#   bash tests/test_sweep_slurm.sh path/to/effdim
. "$(cd "$(dirname "$0")" && pwd)/cli_lib.sh"

PATH="$PATH:/usr/sbin:/sbin"
for p in slurmctld slurmd sbatch squeue scontrol sinfo; do
    if ! command -v "$p" >/dev/null; then
        echo "SKIP: $p is not installed (Debian's slurm-wlm; tools/bootstrap.sh slow installs it)"
        exit 77
    fi
done
PLUGINS=""
for d in /usr/lib/x86_64-linux-gnu/slurm-wlm /usr/lib/*/slurm-wlm /usr/lib/slurm /usr/lib64/slurm; do
    [ -e "$d/select_cons_tres.so" ] && PLUGINS=$d && break
done
if [ -z "$PLUGINS" ]; then
    echo "SKIP: no SLURM plugin folder with select_cons_tres.so found"
    exit 77
fi
if [ -e "$PLUGINS/auth_none.so" ] && [ -e "$PLUGINS/cred_none.so" ]; then
    AUTH=none
elif command -v munged >/dev/null && [ -e "$PLUGINS/auth_munge.so" ]; then
    AUTH=munge
else
    echo "SKIP: this SLURM has neither auth/none nor munge (Debian's munge)"
    exit 77
fi

cli_setup test_sweep_slurm.sh effdim-sweep-slurm "$@"
chmod 755 "$TMP"
PY=/usr/bin/python3
if ! $PY -c "import h5py" 2>/dev/null; then PY=""; fi

PIDS=()
cleanup() {
    [ -n "${JOB:-}" ] && scancel "$JOB" >/dev/null 2>&1
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

HOST=$(hostname -s)
USER_NAME=$(id -un)
CTL_PORT=$((20000 + RANDOM % 20000))
D_PORT=$((CTL_PORT + 1))
mkdir -p state spool
cat >slurm.conf <<EOF
ClusterName=effdimtest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTL_PORT
SlurmdPort=$D_PORT
SlurmUser=$USER_NAME
SlurmdUser=$USER_NAME
AuthType=auth/$AUTH
CredType=cred/$AUTH
PluginDir=$PLUGINS
StateSaveLocation=$TMP/state
SlurmdSpoolDir=$TMP/spool
SlurmctldPidFile=$TMP/slurmctld.pid
SlurmdPidFile=$TMP/slurmd.pid
SlurmctldLogFile=$TMP/slurmctld.log
SlurmdLogFile=$TMP/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=effdim Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$TMP/slurm.conf

if [ "$AUTH" = munge ]; then
    mkdir -p munge
    chmod 700 munge
    dd if=/dev/urandom of=munge/munge.key bs=1024 count=1 2>/dev/null
    chmod 400 munge/munge.key
    munged --foreground --force --key-file="$TMP/munge/munge.key" --socket="$TMP/munge/socket" \
        --pid-file="$TMP/munge/munged.pid" --log-file="$TMP/munge/munged.log" \
        --seed-file="$TMP/munge/seed" >/dev/null 2>&1 &
    PIDS+=($!)
    echo "AuthInfo=socket=$TMP/munge/socket" >>slurm.conf
    sleep 1
fi

slurmctld -D -i -f "$SLURM_CONF" >slurmctld.out 2>&1 &
PIDS+=($!)
up=0
for _ in $(seq 100); do
    if scontrol ping 2>/dev/null | grep -q "is UP"; then up=1; break; fi
    sleep 0.2
done
if [ $up -eq 1 ]; then
    ok "slurmctld is up (auth/$AUTH, port $CTL_PORT)"
else
    fail "slurmctld is up" "$(tail -5 slurmctld.out slurmctld.log 2>/dev/null)"
fi
slurmd -D -f "$SLURM_CONF" -N "$HOST" >slurmd.out 2>&1 &
PIDS+=($!)
idle=0
for _ in $(seq 150); do
    state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null)
    if [ "$state" = idle ]; then idle=1; break; fi
    sleep 0.2
done
if [ $idle -eq 1 ]; then
    ok "slurmd registered node $HOST, idle"
else
    fail "slurmd registered node $HOST, idle" "state '$state'" "$(tail -5 slurmd.out slurmd.log 2>/dev/null)"
fi

cat >grid.json <<'EOF'
{"data": "spirals:n=200,seed=3", "test": "spirals:n=200,seed=4",
 "widths": [2, 3, 4, 6, 8], "seeds": [1],
 "train": {"epochs": 30, "batch": 50, "lr": 0.02},
 "curvature": {"k": 4, "z": [0.1, 1], "probes": 4}}
EOF
"$EFFDIM" sweep grid.json -o ref.h5 --threads 1 >ref.out 2>&1 || fail "the reference run" "$(cat ref.out)"

# one CPU per task (overriding the script's 2): both tasks run at once, one
# BLAS thread each, so their rows are bitwise the reference's
SBATCH_SCRIPT="$CLI_LIB_DIR/../docs/examples/sweep.sbatch"
JOB=""
if [ $idle -eq 1 ]; then
    JOB=$(EFFDIM="$EFFDIM" sbatch --parsable --array=0-1 --cpus-per-task=1 --chdir="$TMP" \
        "$SBATCH_SCRIPT" grid.json 2>sbatch.err)
    JOB=${JOB%%;*}
fi
if [[ "$JOB" =~ ^[0-9]+$ ]]; then
    ok "sbatch --array=0-1 docs/examples/sweep.sbatch: job $JOB"
else
    fail "sbatch --array=0-1 docs/examples/sweep.sbatch" "$(cat sbatch.err 2>/dev/null)"
    JOB=""
fi
done_ok=0
if [ -n "$JOB" ]; then
    start=$SECONDS
    while [ $((SECONDS - start)) -lt 300 ]; do
        if [ -z "$(squeue -h -j "$JOB" 2>/dev/null)" ]; then done_ok=1; break; fi
        sleep 1
    done
    if [ $done_ok -eq 1 ] && [ -f sweep-0.h5 ] && [ -f sweep-1.h5 ]; then
        ok "both array tasks finished in $((SECONDS - start)) s: $(cat sweep-*.log | grep -c 'shard [01]/2') shard lines in their logs"
    else
        fail "both array tasks finished within 300 s" "$(squeue -j "$JOB" 2>&1 | tail -3)" \
            "$(tail -3 sweep-*.log 2>/dev/null)" "$(tail -3 slurmd.log 2>/dev/null)"
        done_ok=0
    fi
fi
if [ $done_ok -eq 1 ]; then
    "$EFFDIM" sweep merge sweep-0.h5 sweep-1.h5 -o merged.h5 >merge.out 2>&1
    rc=$?
    if [ $rc -eq 0 ] && grep -q "merged.h5: 5 of 5 configurations from 2 files" merge.out; then
        ok "the two shards merge ($(cat merge.out))"
    else
        fail "the two shards merge" "exit $rc" "$(cat merge.out)"
    fi
    "$EFFDIM" inspect merged.h5 >insp.out 2>&1
    if grep -q "^rows        5 of 5: 5 ok, 0 partial, 0 failed, 0 not run yet" insp.out; then
        ok "the merged table has the 5 configurations, every one ok"
    else
        fail "the merged table has the 5 configurations, every one ok" "$(head -12 insp.out)"
    fi
    if [ -n "$PY" ]; then
        cat >rows.py <<'EOF'
import sys, h5py
t = h5py.File(sys.argv[1], "r")["sweep/table"][()]
skip = {"seconds", "seconds_train", "seconds_curvature", "seconds_lanczos", "seconds_slq"}
names = [n for n in t.dtype.names if n not in skip]
for r in sorted(t, key=lambda r: r["index"]):
    print(" ".join(repr(r[n]) for n in names))
EOF
        $PY rows.py ref.h5 >ref.rows 2>&1
        $PY rows.py merged.h5 >merged.rows 2>&1
        if [ "$(wc -l <ref.rows)" -eq 5 ] && cmp -s ref.rows merged.rows; then
            ok "the merged table equals the single run's, bitwise"
        else
            fail "the merged table equals the single run's, bitwise" "$(diff ref.rows merged.rows | head -4)"
        fi
    fi
fi

cli_finish
