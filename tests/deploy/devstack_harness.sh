#!/usr/bin/env bash
# Runs the volworker devstack plugin the way devstack does, on stand-ins for
# the devstack functions it calls:
#
#   devstack_harness.sh stack/install stack/post-config stack/extra
#   devstack_harness.sh unstack
#   devstack_harness.sh clean
#
# Each run sources devstack/settings, then devstack/plugin.sh MODE [PHASE]
# for each argument, in one shell, as stack.sh, unstack.sh and clean.sh do.
# iniset writes a real ini file; run_process, stop_process, setup_develop,
# pip_install, sudo and systemctl are recorded in $HARNESS_CALLS (one call
# per line, tab-separated) and do nothing else, except that sudo runs its
# command as the caller.
#
# Environment: HARNESS_WORK (a scratch directory), HARNESS_ROOT (the
# checkout), HARNESS_BIN (where volworker is installed), HARNESS_CALLS;
# HARNESS_DISABLED (services disabled in local.conf) and HARNESS_NOT_READY
# (a unit that systemctl reports failed); VOLWORKER_* as local.conf sets
# them.
set -o errexit -o nounset

: "${HARNESS_WORK:?}" "${HARNESS_ROOT:?}" "${HARNESS_BIN:?}" "${HARNESS_CALLS:?}"

# -- what stackrc and local.conf set -----------------------------------------
DEST=$HARNESS_WORK/opt/stack
DATA_DIR=$DEST/data
STACK_USER=$(id -un)
SERVICE_HOST=127.0.0.1
ENABLE_DEBUG_LOG_LEVEL=True
USER_UNITS=False
SYSTEMD_DIR=$HARNESS_WORK/systemd
SYSTEMCTL=harness_systemctl
RABBIT_USERID=guest
RABBIT_PASSWORD=guest
RABBIT_HOST=127.0.0.1
ENABLED_SERVICES=rabbit
DISABLED_SERVICES=${HARNESS_DISABLED:-}
export DEST DATA_DIR STACK_USER SERVICE_HOST ENABLE_DEBUG_LOG_LEVEL USER_UNITS \
    SYSTEMD_DIR SYSTEMCTL

mkdir -p "$DATA_DIR" "$SYSTEMD_DIR"
# devstack clones a plugin into $DEST/<name>
ln -sfn "$HARNESS_ROOT" "$DEST/volworker"

function record {
    local IFS=$'\t'
    echo "$*" >>"$HARNESS_CALLS"
}

# -- stand-ins for devstack's functions ----------------------------------------
function define_plugin { record define_plugin "$@"; }
function echo_summary { echo "$@"; }
function die {
    local line=$1
    shift
    echo "[ERROR] line $line: $*" >&2
    exit 1
}

function is_service_enabled {
    local service
    for service in "$@"; do
        [[ ",$ENABLED_SERVICES," == *",$service,"* ]] && return 0
    done
    return 1
}

function enable_service {
    local service
    for service in "$@"; do
        [[ ",$DISABLED_SERVICES," == *",$service,"* ]] && continue
        is_service_enabled "$service" || ENABLED_SERVICES+=",$service"
    done
}

function get_transport_url {
    echo "rabbit://$RABBIT_USERID:$RABBIT_PASSWORD@$RABBIT_HOST:5672/"
}
function get_python_exec_prefix { echo "$HARNESS_BIN"; }
function setup_develop { record setup_develop "$@"; }
function pip_install { record pip_install "$@"; }
function sudo {
    record sudo "$@"
    "$@"
}

function iniset {
    if [[ "$1" == "-sudo" ]]; then
        shift
    fi
    python3 - "$@" <<'EOF'
import configparser
import sys

path, section, option, value = sys.argv[1:5]
parser = configparser.RawConfigParser(default_section="__none__", strict=True)
parser.optionxform = str
parser.read(path)
if not parser.has_section(section):
    parser.add_section(section)
parser.set(section, option, value)
with open(path, "w") as f:
    parser.write(f)
EOF
}

# devstack's run_process ends in "systemctl start devstack@NAME.service"
function run_process {
    if is_service_enabled "$1"; then
        record run_process "$1" "$2"
        $SYSTEMCTL start "devstack@$1.service"
    fi
}

function stop_process {
    if is_service_enabled "$1"; then
        record stop_process "$1"
    fi
}

# A started unit is active with the status a ready volworker gives it.
function harness_systemctl {
    record systemctl "$@"
    local unit=${*: -1}
    local name=${unit#devstack@volworker-}
    if [[ "$unit" == "${HARNESS_NOT_READY:-}" ]]; then
        [[ "$1" == show ]] && echo ""
        [[ "$1" == show ]] || return 3
        return 0
    fi
    if [[ "$1" == show ]]; then
        echo "Serving ${name%.service}"
    fi
}

# -- the plugin ------------------------------------------------------------------
# shellcheck source=devstack/settings
source "$DEST/volworker/devstack/settings"
for run in "$@"; do
    mode=${run%%/*}
    if [[ "$run" == */* ]]; then
        # shellcheck source=devstack/plugin.sh
        source "$DEST/volworker/devstack/plugin.sh" "$mode" "${run#*/}"
    else
        # shellcheck source=devstack/plugin.sh
        source "$DEST/volworker/devstack/plugin.sh" "$mode"
    fi
done
