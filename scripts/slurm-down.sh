#!/usr/bin/env bash
# Stop the local Slurm cluster that scripts/slurm-up.sh started for DIR:
#
#   scripts/slurm-down.sh DIR
#
# Cancels its unfinished jobs, then stops slurmd, slurmctld and munged, found only through the pid files under
# DIR/run (each checked to be that daemon, started for DIR). Keeps DIR (config, saved state, logs, jobcomp.txt),
# so slurm-up.sh restarts from it; `rm -rf DIR` afterwards for a clean slate. A no-op when nothing runs.
set -euo pipefail

PROG=slurm-down.sh
# shellcheck source=scripts/slurm-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm-lib.sh"

[[ $# -eq 1 && -n $1 ]] || die "usage: $PROG DIR"
[[ -d $1 ]] || { log "no $1: nothing to stop"; exit 0; }
DIR=$(cd -- "$1" && pwd -P)
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
export SLURM_CONF=$DIR/slurm.conf

MUNGE_PID=$DIR/run/munged.pid
CTLD_PID=$DIR/run/slurmctld.pid
SLURMD_PID=$DIR/run/slurmd.pid

# ---- cancel this cluster's unfinished jobs (needs slurmctld, hence munged) ------------------------------------
if running slurmctld "$CTLD_PID" && command -v squeue >/dev/null; then
    mapfile -t JOBS < <(squeue -h -t PENDING,RUNNING,SUSPENDED,CONFIGURING,REQUEUED,RESIZING -o %i 2>/dev/null || true)
    if (( ${#JOBS[@]} )); then
        log "cancelling ${#JOBS[@]} job(s): ${JOBS[*]}"
        scancel -- "${JOBS[@]}" || true
        # Let slurmd finish killing them (KillWait=5) before it goes, so no job processes are left behind.
        for ((i = 0; i < 150; i++)); do
            [[ -z $(squeue -h -t RUNNING,COMPLETING,SUSPENDED -o %i 2>/dev/null || true) ]] && break
            sleep 0.1
        done
    fi
fi

# ---- stop the daemons: slurmd and slurmctld together, then munged ------------------------------------------
PIDS=()
NAMES=()
signal() {  # signal NAME PIDFILE: SIGTERM it if it is ours
    if running "$1" "$2"; then
        local pid
        pid=$(<"$2")
        kill -TERM "$pid" 2>/dev/null || true
        PIDS+=("$pid")
        NAMES+=("$1")
    fi
    return 0
}
reap() {  # wait up to 20 s for the signalled daemons, then SIGKILL the rest
    local i j alive
    for ((i = 0; i < 200; i++)); do
        alive=0
        for j in "${!PIDS[@]}"; do kill -0 "${PIDS[$j]}" 2>/dev/null && alive=1; done
        (( alive )) || return 0
        sleep 0.1
    done
    for j in "${!PIDS[@]}"; do
        if kill -0 "${PIDS[$j]}" 2>/dev/null; then
            log "${NAMES[$j]} (pid ${PIDS[$j]}) ignored SIGTERM for 20 s: SIGKILL"
            kill -KILL "${PIDS[$j]}" 2>/dev/null || true
        fi
    done
}

signal slurmd "$SLURMD_PID"
signal slurmctld "$CTLD_PID"
(( ${#PIDS[@]} )) && reap
STOPPED=("${NAMES[@]}")
PIDS=() NAMES=()
signal munged "$MUNGE_PID"
(( ${#PIDS[@]} )) && reap
STOPPED+=("${NAMES[@]}")
rm -f -- "$SLURMD_PID" "$CTLD_PID" "$MUNGE_PID"

if (( ${#STOPPED[@]} )); then
    log "stopped ${STOPPED[*]} for $DIR"
else
    log "nothing running for $DIR"
fi
