#!/usr/bin/env bash
# Runs inside the container test_systemd_boot.py boots, as a oneshot unit
# once the system is up, then powers the container off. It drives the real
# volworker@file.service the way an operator would and writes what it saw
# to /results/facts (KEY=VALUE lines) for the test to check.
#
#   systemd_boot.sh PYTHON CHECKOUT
set -o nounset
python=$1
checkout=$2
facts=/results/facts
unit=volworker@file.service

fact() { echo "$1=$2" >>"$facts"; }
prop() { systemctl show --property="$1" --value "$unit"; }
# Whatever happens below, the unit's journal is kept and the container
# powers off at once, so a failure shows in the test without a long wait.
finish() {
    journalctl -u "$unit" --no-pager >/results/journal 2>&1
    systemctl poweroff --no-block
}
trap finish EXIT

: >"$facts"
fact target_after "$(systemctl show --property=After --value volworker.target)"
# the target waits for its backends: they are ready when it returns
timeout 150 systemctl start volworker.target
fact active "$(systemctl is-active "$unit")"
fact status "$(prop StatusText)"
main=$(prop MainPID)
# a worker that did not start leaves nothing to check (and MainPID=0 would
# make the kill -9 below one of this script's own process group)
[[ "$main" =~ ^[1-9][0-9]*$ ]] || exit 1
fact main_user "$(ps -o user= -p "$main")"
# the sandbox is in force, not only configured
fact main_nnp "$(awk '/^NoNewPrivs:/ {print $2}' "/proc/$main/status")"
fact main_seccomp "$(awk '/^Seccomp:/ {print $2}' "/proc/$main/status")"
fact main_capbnd "$(awk '/^CapBnd:/ {print $2}' "/proc/$main/status")"

# a volume, attached: qemu-nbd serves it from inside the sandbox, over TLS
# with the attachment's key (in /results/client/psk)
mkdir -m 0700 /results/client
"$python" "$checkout/tests/deploy/boot_client.py" attach /results/client
fact attach_rc $?
fact volume_mode "$(stat -c '%U %a' /var/lib/volworker/volumes/volume-*)"
fact key_mode "$(stat -c '%U %a' /var/lib/volworker/file/nbd/*.tls/keys.psk)"
fact key_dir_mode "$(stat -c '%U %a' /var/lib/volworker/file/nbd/*.tls)"
mapfile -t qemu </results/client/qemu-args
qemu-io -r "${qemu[@]}" -c "read 0 4096" >/results/qemu-io.out 2>&1
fact nbd_read_rc $?
# without TLS the export gives nothing away
qemu-io -r -f raw -c "read 0 4096" "$(cat /results/client/plain-url)" >>/results/qemu-io.out 2>&1
fact nbd_plain_rc $?
nbd=$(pgrep -u volworker -x qemu-nbd | head -n1)
fact nbd_user "$(ps -o user= -p "$nbd")"
fact nbd_cgroup "$(grep -c "/$unit" "/proc/$nbd/cgroup")"
# the key as a grep pattern in a file: on grep's command line it would be found
cut -d: -f2 /results/client/psk/keys.psk >/results/client/key
fact key_on_cmdline "$(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' ' ' | grep -c -F -f /results/client/key)"
sleep 1
fact watchdog_usec "$(prop WatchdogUSec)"
fact watchdog_ping "$(prop WatchdogTimestampMonotonic)"

# a crash: systemd restarts it after RestartSec=
kill -9 "$main"
for _ in $(seq 1 60); do
    [[ "$(prop NRestarts)" == 1 && "$(systemctl is-active "$unit")" == active ]] && break
    sleep 0.5
done
fact restarts "$(prop NRestarts)"
fact restarted_active "$(systemctl is-active "$unit")"
fact restarted_status "$(prop StatusText)"
# the export of the attached volume died with it and is served again, with
# the same key, once the restore that follows READY=1 has come to it
for _ in $(seq 1 30); do
    qemu-io -r "${qemu[@]}" -c "read 0 4096" >>/results/qemu-io.out 2>&1 && break
    sleep 0.5
done
qemu-io -r "${qemu[@]}" -c "read 0 4096" >>/results/qemu-io.out 2>&1
fact nbd_after_restart_rc $?

# a stop: SIGTERM, a clean exit, nothing of the unit left running
systemctl stop "$unit"
fact stop_result "$(prop Result)"
fact stop_code "$(prop ExecMainCode)"
fact stop_status "$(prop ExecMainStatus)"
fact left_running "$(pgrep -u volworker -c)"
qemu-io -r "${qemu[@]}" -c "read 0 4096" >>/results/qemu-io.out 2>&1
fact nbd_after_stop_rc $?
journalctl -u "$unit" --no-pager >/results/journal 2>&1
fact key_in_journal "$(grep -c -F -f /results/client/key /results/journal)"
fact finished yes
