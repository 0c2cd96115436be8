#!/usr/bin/env bash
# Run a small phantom study through a real one-node SLURM cluster on this machine and compare
# its numbers with a local run.
#
#   bash tests/cluster/run_slurm_demo.sh        (as root; needs Debian's apt for slurm + munge)
#
# Installs slurmctld, slurmd, slurm-client and munge when absent, starts munged, slurmctld and
# slurmd with a minimal /etc/slurm/slurm.conf (job steps read it from there; an existing one is
# backed up and restored), state and logs in a scratch folder, runs the study with `snakemake --profile profiles/slurm`, checks
# that every job went through sbatch (slurmctld log) and that the results equal a local run's,
# then stops the daemons it started, by their pids.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${PYTHON:-$REPO/.venv/bin/python}"
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/voxelyte-slurm.XXXXXX")"
chmod 0755 "$SCRATCH"   # munged runs as the munge user
PIDS=()

CONF_BACKUP=""
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    if [ -n "$CONF_BACKUP" ]; then mv "$CONF_BACKUP" /etc/slurm/slurm.conf; else rm -f /etc/slurm/slurm.conf; fi
    if [ "${KEEP_SCRATCH:-0}" != 1 ]; then rm -rf "$SCRATCH"; else echo "kept $SCRATCH"; fi
}
trap cleanup EXIT

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    echo "installing slurm and munge (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
fi
"$PY" -c "import snakemake_executor_plugin_slurm" 2>/dev/null || \
    "$PY" -m pip install --quiet snakemake-executor-plugin-slurm

# --- munge: authentication between the slurm daemons and clients
mkdir -p /run/munge "$SCRATCH/munge"
chown munge:munge /run/munge "$SCRATCH/munge"
chmod 0755 /run/munge
test -s /etc/munge/munge.key || runuser -u munge -- mungekey --create
runuser -u munge -- munged --pid-file="$SCRATCH/munge/munged.pid" \
    --log-file="$SCRATCH/munge/munged.log" --seed-file="$SCRATCH/munge/munged.seed"
sleep 1
PIDS+=("$(cat "$SCRATCH/munge/munged.pid")")
munge -n | unmunge >/dev/null

# --- slurm.conf: one node, one partition, no accounting
HOST="$(hostname -s)"
CPUS="$(nproc)"
MEM_MB="$(( $(free -m | awk '/^Mem:/ {print $2}') - 1024 ))"
mkdir -p "$SCRATCH/slurm/state" "$SCRATCH/slurm/spool" "$SCRATCH/slurm/log"
SLURM_CONF=/etc/slurm/slurm.conf
mkdir -p /etc/slurm
if [ -e "$SLURM_CONF" ]; then CONF_BACKUP="$SCRATCH/slurm.conf.orig"; cp -p "$SLURM_CONF" "$CONF_BACKUP"; fi
cat > "$SLURM_CONF" <<CONF
ClusterName=voxelyte-test
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
StateSaveLocation=$SCRATCH/slurm/state
SlurmdSpoolDir=$SCRATCH/slurm/spool
SlurmctldPidFile=$SCRATCH/slurm/slurmctld.pid
SlurmdPidFile=$SCRATCH/slurm/slurmd.pid
SlurmctldLogFile=$SCRATCH/slurm/log/slurmctld.log
SlurmdLogFile=$SCRATCH/slurm/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF

slurmctld -f "$SLURM_CONF"
for _ in $(seq 30); do test -s "$SCRATCH/slurm/slurmctld.pid" && break; sleep 0.5; done
PIDS+=("$(cat "$SCRATCH/slurm/slurmctld.pid")")
slurmd -f "$SLURM_CONF"
for _ in $(seq 30); do test -s "$SCRATCH/slurm/slurmd.pid" && break; sleep 0.5; done
PIDS+=("$(cat "$SCRATCH/slurm/slurmd.pid")")
for _ in $(seq 60); do
    sinfo -h -o "%t" 2>/dev/null | grep -q idle && break
    sleep 1
done
sinfo
sinfo -h -o "%t" | grep -q idle || { echo "slurm node did not become idle"; cat "$SCRATCH/slurm/log/"*.log; exit 1; }

# --- the study: two small phantoms, run through SLURM and locally
"$PY" - "$REPO" "$SCRATCH" <<'PYEOF'
import sys, yaml, pathlib
repo, scratch = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for name, se in (("big_se", 3.7), ("small_se", 2.45)):
    sample = yaml.safe_load((repo / "config/samples/BM10.yaml").read_text())
    sample["measured"]["table"] = str((repo / "config/samples" / sample["measured"]["table"]).resolve())
    sample["phantom"].update(shape_zyx=[48, 64, 64], se_d50_um=se)
    (scratch / f"{name}.yaml").write_text(yaml.safe_dump(sample))
for mode in ("slurm", "local"):
    study = {"study": mode, "results_dir": str(scratch / "results"),
             "samples": {n: str(scratch / f"{n}.yaml") for n in ("big_se", "small_se")}}
    (scratch / f"study_{mode}.yaml").write_text(yaml.safe_dump(study))
PYEOF
SNAKEMAKE=("$PY" -m snakemake --snakefile "$REPO/Snakefile" --directory "$SCRATCH")
"${SNAKEMAKE[@]}" --profile "$REPO/profiles/slurm" --configfile "$SCRATCH/study_slurm.yaml" \
    --default-resources slurm_partition=main mem_mb=2000 runtime=30
"${SNAKEMAKE[@]}" --profile "$REPO/profiles/local" --cores 2 --configfile "$SCRATCH/study_local.yaml"

# --- checks: every job went through sbatch; numbers equal the local run's
"$PY" - "$SCRATCH" <<'PYEOF'
import json, re, sys, pathlib
import numpy as np, xarray as xr
scratch = pathlib.Path(sys.argv[1])


def numbers(tree, prefix=""):
    """Flatten a JSON tree to {path: number}, leaving out run-time measurements."""
    out = {}
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for key, value in items:
        path = f"{prefix}/{key}"
        if str(key).endswith("_s") or any(w in str(key) for w in ("time", "memory", "rss")):
            continue
        if isinstance(value, (dict, list)):
            out.update(numbers(value, path))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[path] = float(value)
    return out


log = (scratch / "slurm/log/slurmctld.log").read_text()
# a job is started by the main scheduler ("sched: Allocate JobId=N") or by the backfill
# scheduler ("sched/backfill: ... Started JobId=N"): count the distinct job ids of both
allocated = len(set(re.findall(r"(?:Allocate|Started) JobId=(\d+)", log)))
runs = json.loads((scratch / "results/slurm/provenance.json").read_text())["runs"]
print(f"slurmctld allocated {allocated} jobs; the study had {len(runs)} rule runs + provenance")
assert allocated >= len(runs) + 1, "not every job went through sbatch"
for sample in ("big_se", "small_se"):
    for store, var in (("raw.zarr", "raw"), ("corrected.zarr", "corrected")):
        a = xr.open_zarr(scratch / "results/slurm" / sample / store)[var].values
        b = xr.open_zarr(scratch / "results/local" / sample / store)[var].values
        np.testing.assert_array_equal(a, b, err_msg=f"{sample} {store}")
    da_ = json.loads((scratch / "results/slurm" / sample / "descriptors/descriptors.json").read_text())
    db_ = json.loads((scratch / "results/local" / sample / "descriptors/descriptors.json").read_text())
    assert da_ == db_, f"{sample}: descriptors differ between SLURM and local runs"
    a = xr.open_zarr(scratch / "results/slurm" / sample / "labels.zarr")["labels"].values
    b = xr.open_zarr(scratch / "results/local" / sample / "labels.zarr")["labels"].values
    np.testing.assert_array_equal(a, b, err_msg=f"{sample} labels.zarr")
    ta = numbers(json.loads((scratch / "results/slurm" / sample / "transport/transport.json").read_text()))
    tb = numbers(json.loads((scratch / "results/local" / sample / "transport/transport.json").read_text()))
    assert ta.keys() == tb.keys() and len(ta) > 10, f"{sample}: transport.json keys differ"
    for key in ta:
        assert np.isclose(ta[key], tb[key], rtol=1e-9, atol=0, equal_nan=True), \
            f"{sample} transport {key}: {ta[key]} (SLURM) vs {tb[key]} (local)"
    sa = xr.open_zarr(scratch / "results/slurm" / sample / "ssrm.zarr")
    sb = xr.open_zarr(scratch / "results/local" / sample / "ssrm.zarr")
    assert set(sa.data_vars) == set(sb.data_vars), f"{sample}: ssrm.zarr variables differ"
    for var in sa.data_vars:
        np.testing.assert_allclose(sa[var].values, sb[var].values, rtol=1e-9, atol=0,
                                   err_msg=f"{sample} ssrm.zarr {var}")
    print(f"{sample}: raw, corrected, labels, descriptors, {len(ta)} transport numbers and "
          f"{len(sa.data_vars)} SSRM arrays equal")
print("SLURM run: every job through sbatch, results identical to the local run")
PYEOF
