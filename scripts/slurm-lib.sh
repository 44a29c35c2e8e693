# Shared by slurm-up.sh and slurm-down.sh (sourced after they set PROG, and DIR before calling `running`).

die() { echo "$PROG: error: $*" >&2; exit 1; }
log() { echo "$PROG: $*" >&2; }

running() {  # running NAME PIDFILE: the pid file's process is alive, is NAME, and was started for this DIR
    local pid
    [[ -f $2 ]] || return 1
    pid=$(<"$2")
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$1" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -e " $DIR/" -e "=$DIR/"
}
