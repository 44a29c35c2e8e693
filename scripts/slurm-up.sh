#!/usr/bin/env bash
# Bring up a real one-node Slurm cluster on localhost with 8 fake GPUs, for the tests and CI.
#
#   scripts/slurm-up.sh DIR        (then: export SLURM_CONF=DIR/slurm.conf)
#
# Debian 12's slurm-wlm 22.05: installs slurmctld, slurmd, slurm-client and munge (only if missing; needs root and
# apt-get), writes slurm.conf, gres.conf and a munge key under DIR, and starts munged, slurmctld and slurmd by hand
# (no systemd), each with its pid file under DIR/run, unless already running for DIR. Waits until the node is idle.
# Idempotent: a second run is a fast no-op. Stop it with scripts/slurm-down.sh DIR; a later run restarts it from
# the state saved in DIR. Ports: derived from DIR (so two checkouts get two clusters, and a default cluster on
# 6817/6818 is left alone); override with SLURM_LOCAL_CTLD_PORT / SLURM_LOCAL_SLURMD_PORT.
# See /work/shared/reference/slurm-local.md for what 22.05 accepts and why each config line is there.
set -euo pipefail

PROG=slurm-up.sh
# shellcheck source=scripts/slurm-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm-lib.sh"
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[[ $# -eq 1 && -n $1 ]] || die "usage: $PROG DIR"
T0=$(now)
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
export PATH

# ---- packages -----------------------------------------------------------------------------------------------
have_binaries() { command -v slurmctld && command -v slurmd && command -v sbatch && command -v munged; } >/dev/null

if ! have_binaries; then
    command -v apt-get >/dev/null || die "Slurm is not installed and apt-get is not available (not Debian/Ubuntu)"
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null && sudo -n true 2>/dev/null \
            || die "Slurm is not installed and installing it needs root (not root, no password-less sudo)"
        SUDO=(sudo -n)
    fi
    log "installing slurmctld slurmd slurm-client munge (apt-get, --no-install-recommends) ..."
    T_INSTALL=$(now)
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq >&2 || die "apt-get update failed"
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold slurmctld slurmd slurm-client munge >&2 \
        || die "apt-get install slurmctld slurmd slurm-client munge failed"
    have_binaries || die "installed the packages but slurmctld/slurmd/sbatch/munged are still not on PATH"
    log "installed in $(since "$T_INSTALL") s"
fi

# The daemons run as root (SlurmUser=root, munged as root with its own key): see the reference notes.
[[ $(id -u) -eq 0 ]] || die "the local cluster's daemons run as root; run as root (not $(id -un))"

# ---- paths and ports ----------------------------------------------------------------------------------------
mkdir -p -- "$1"
DIR=$(cd -- "$1" && pwd -P)
# The path goes verbatim into slurm.conf, gres.conf and daemon command lines: keep it to plain characters.
[[ $DIR =~ ^/[A-Za-z0-9._/-]+$ ]] || die "DIR must be a path of letters, digits and ._-/ only (got '$DIR')"
SOCKET=$DIR/munge/munge.socket
(( ${#SOCKET} <= 100 )) || die "DIR is too long for a Unix socket path ($SOCKET: ${#SOCKET} > 100 characters)"

HASH=$(printf '%s' "$DIR" | cksum | cut -d' ' -f1)
CTLD_PORT=${SLURM_LOCAL_CTLD_PORT:-$(( 17000 + (HASH % 500) * 2 ))}
SLURMD_PORT=${SLURM_LOCAL_SLURMD_PORT:-$(( CTLD_PORT + 1 ))}
[[ $CTLD_PORT =~ ^[0-9]+$ && $SLURMD_PORT =~ ^[0-9]+$ ]] || die "ports must be numbers"

HOST=$(hostname -s)
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF

mkdir -p "$DIR"/{state,spool,log,run,dev}
mkdir -p -m 0711 "$DIR/munge"
chmod 0711 "$DIR/munge"   # munged: "Socket is inaccessible: execute permissions for all required" otherwise

# ---- fake GPUs: character devices (the same as /dev/null); symlinks to /dev/null where mknod is not allowed --
for i in 0 1 2 3 4 5 6 7; do
    dev=$DIR/dev/gpu$i
    [[ -c $dev ]] && continue
    rm -f -- "$dev"
    mknod -m 0666 "$dev" c 1 3 2>/dev/null || ln -s /dev/null "$dev"
done

# ---- config: written only when it changed -------------------------------------------------------------------
write_if_changed() {  # write_if_changed FILE  (content on stdin); returns 0 if FILE changed
    local tmp
    tmp=$(mktemp "$1.XXXXXX")
    cat >"$tmp"
    if [[ -f $1 ]] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 1; fi
    chmod 0644 "$tmp"
    mv -f "$tmp" "$1"
}

CHANGED=0
write_if_changed "$CONF" <<EOF && CHANGED=1
# Written by scripts/slurm-up.sh for a one-node test cluster; regenerated on every run (edit the script instead).
ClusterName=trtbench
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SwitchType=switch/none
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
MailProg=/bin/true
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
MinJobAge=86400
KillWait=5
GresTypes=gpu
NodeName=localhost NodeHostname=$HOST NodeAddr=127.0.0.1 CPUs=16 RealMemory=16000 Gres=gpu:8 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF

write_if_changed "$DIR/gres.conf" <<EOF && CHANGED=1
AutoDetect=off
Name=gpu File=$DIR/dev/gpu[0-7]
EOF

if [[ ! -s $DIR/munge/munge.key ]]; then
    (umask 077 && dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none)
fi
chmod 0600 "$DIR/munge/munge.key"

# ---- daemons ------------------------------------------------------------------------------------------------
stop() {  # stop NAME PIDFILE: SIGTERM, then SIGKILL after 20 s
    local pid i
    running "$1" "$2" || return 0
    pid=$(<"$2")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$2"; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$2"
}

wait_for() {  # wait_for SECONDS WHAT CMD...: poll CMD every 0.1 s
    local deadline=$(( $(date +%s) + $1 )) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        (( $(date +%s) < deadline )) || return 1
        sleep 0.1
    done
}

tail_logs() {
    local f
    for f in "$@"; do
        [[ -f $f ]] && { echo "---- last lines of $f:" >&2; tail -n 15 "$f" >&2; }
    done
    return 0
}

MUNGE_PID=$DIR/run/munged.pid
CTLD_PID=$DIR/run/slurmctld.pid
SLURMD_PID=$DIR/run/slurmd.pid

if (( CHANGED )) && { running slurmctld "$CTLD_PID" || running slurmd "$SLURMD_PID"; }; then
    log "config under $DIR changed: restarting slurmctld and slurmd"
    stop slurmd "$SLURMD_PID"
    stop slurmctld "$CTLD_PID"
fi

STARTED=()
if ! running munged "$MUNGE_PID"; then
    rm -f -- "$SOCKET" "$SOCKET.lock"
    munged --key-file="$DIR/munge/munge.key" --socket="$SOCKET" --pid-file="$MUNGE_PID" \
        --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed" \
        || { tail_logs "$DIR/log/munged.log"; die "munged failed to start"; }
    wait_for 10 "munged" munge -n -S "$SOCKET" \
        || { tail_logs "$DIR/log/munged.log"; die "munged is not answering on $SOCKET"; }
    STARTED+=(munged)
fi

if ! running slurmctld "$CTLD_PID"; then
    slurmctld -f "$CONF" || { tail_logs "$DIR/log/slurmctld.log"; die "slurmctld failed to start"; }
    wait_for 20 "slurmctld" scontrol ping \
        || { tail_logs "$DIR/log/slurmctld.log"; die "slurmctld is not answering on port $CTLD_PORT"; }
    STARTED+=(slurmctld)
fi

if ! running slurmd "$SLURMD_PID"; then
    slurmd -f "$CONF" -N localhost || { tail_logs "$DIR/log/slurmd.log"; die "slurmd failed to start"; }
    STARTED+=(slurmd)
fi

node_state() { sinfo -h -n localhost -o %T 2>/dev/null; }
node_idle() { local s; s=$(node_state); [[ $s == idle || $s == mixed || $s == allocated ]]; }  # up (busy is up too)

if ! wait_for 10 "node" node_idle; then
    # ReturnToService=2 normally brings the node back; a node left DOWN/DRAINED by an earlier config gets one
    # explicit resume (a no-op error if it is merely still registering).
    scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true
    if ! wait_for 20 "node" node_idle; then
        tail_logs "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log"
        sinfo -N -l >&2 2>/dev/null || true
        die "node localhost is not idle after 30 s (state: '$(node_state)'; $(scontrol show node localhost 2>/dev/null \
            | grep -o 'Reason=.*' || echo 'no reason given'))"
    fi
fi

if (( ${#STARTED[@]} )); then
    log "started ${STARTED[*]} for $DIR (ports $CTLD_PORT/$SLURMD_PORT) in $(since "$T0") s; node localhost: $(node_state), 8 GPUs"
else
    log "already running for $DIR (node localhost: $(node_state))"
fi
echo "export SLURM_CONF=$CONF"
