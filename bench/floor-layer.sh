#!/bin/sh
# The floor for one qemu layer build: what lcake's qemu builder does for a layer, done by hand with
# qemu-img, qemu-system-x86_64 and the OpenSSH client, and nothing else — no state database, no
# plugin, no ledger. bench/qemu_bench.py (P2) times it against `lcake` building the same layer.
#
#   floor-layer.sh WORK_DIR STEP...      STEP: --file SRC DEST | --env K=V | --run COMMAND
#
# Environment (qemu_bench.py sets them from the parent artifact's metadata):
#   PARENT (disk the overlay is backed by), KERNEL, INITRD, APPEND (empty: the disk boots itself),
#   HOST_KEY ("ssh-ed25519 AAAA…"),
#   PORT (free 127.0.0.1 port for the SSH forward), MEMORY (MiB, 256), MACHINE (q35), ACCEL (tcg).
#
# The qemu arguments are the ones plugins/qemu/qemu_machine.cc (qemu_args) builds, option for option,
# so both boot the same machine. One SSH connection is reused for every step (ControlMaster), as
# lcake keeps one session. Prints "phase NAME EPOCH_SECONDS" lines for the breakdown.
set -eu
work=$1
shift
: "${PARENT:?}" "${HOST_KEY:?}" "${PORT:?}"
MEMORY=${MEMORY:-256} MACHINE=${MACHINE:-q35} ACCEL=${ACCEL:-tcg}

phase() { echo "phase $1 $(date +%s.%N)"; }

mkdir -p "$work"
work=$(cd "$work" && pwd)
qemu_pid=
cleanup() {
  ssh -o ControlPath="$work/cm" -O exit x 2>/dev/null || true
  if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then kill "$qemu_pid"; wait "$qemu_pid" || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Per-boot key and NoCloud seed, as the plugin makes them.
ssh-keygen -q -t ed25519 -N '' -C floor -f "$work/key"
printf '#cloud-config\nssh_deletekeys: false\ndisable_root: false\nssh_authorized_keys:\n  - %s\n' \
  "$(cat "$work/key.pub")" > "$work/user-data"
printf 'instance-id: floor-%s\nlocal-hostname: floor\n' "$$" > "$work/meta-data"
mkfs.vfat -n cidata -C "$work/seed.img" 1024 > /dev/null 2>&1
mcopy -o -i "$work/seed.img" "$work/user-data" "$work/meta-data" ::
echo "[127.0.0.1]:$PORT $HOST_KEY" > "$work/known_hosts"

qemu-img create -q -f qcow2 -b "$PARENT" -F qcow2 "$work/layer.qcow2"
phase prepared

# Direct kernel boot only when the artifact has a kernel (as qemu_args does).
start_qemu() {
  qemu-system-x86_64 -name floor-layer -machine "$MACHINE" -accel "$ACCEL" -m "$MEMORY" -smp 1 \
    -nodefaults -display none \
    -drive file="$work/layer.qcow2",format=qcow2,if=virtio,discard=unmap \
    -nic "user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:$PORT-:22" \
    -chardev socket,id=qmp,path="$work/qmp.sock",server=on,wait=off -mon chardev=qmp,mode=control \
    -chardev file,id=console,path="$work/console.log" -serial chardev:console \
    -drive file="$work/seed.img",format=raw,if=virtio,readonly=on "$@" > "$work/qemu.log" 2>&1 &
}
if [ -z "${KERNEL:-}" ]; then start_qemu
elif [ -z "${INITRD:-}" ]; then start_qemu -kernel "$KERNEL" -append "$APPEND"
else start_qemu -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND"
fi
qemu_pid=$!
phase qemu_started

ssh_opts="-p $PORT -i $work/key -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=$work/known_hosts \
  -o StrictHostKeyChecking=yes -o LogLevel=ERROR -o ControlPath=$work/cm"
# QEMU accepts TCP at once and may hold an early connection without ever passing on the banner:
# probe with a fresh short-lived connection every 0.1 s until sshd speaks (as lcake does), then log in.
until timeout 0.5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT && head -c 4 <&3" 2>/dev/null | grep -q SSH-; do
  kill -0 "$qemu_pid" 2>/dev/null || { echo "floor: qemu exited before SSH answered" >&2; exit 1; }
  sleep 0.1
done
phase banner
until ssh $ssh_opts -o ConnectTimeout=1 -o ControlMaster=auto -o ControlPersist=yes root@127.0.0.1 true 2>/dev/null; do
  kill -0 "$qemu_pid" 2>/dev/null || { echo "floor: qemu exited before SSH answered" >&2; exit 1; }
  sleep 0.1
done
phase ssh_up

exports=
while [ $# -gt 0 ]; do
  case $1 in
    --file)
      ssh $ssh_opts root@127.0.0.1 "mkdir -p '$(dirname "$3")'"
      scp -q -P "$PORT" -i "$work/key" -o BatchMode=yes -o UserKnownHostsFile="$work/known_hosts" \
        -o ControlPath="$work/cm" "$2" "root@127.0.0.1:$3"
      shift 3 ;;
    --env) exports="${exports}export $2
"; shift 2 ;;
    --run) ssh $ssh_opts root@127.0.0.1 "set -e
$exports$2"; shift 2 ;;
    *) echo "floor: unknown step $1" >&2; exit 2 ;;
  esac
done
phase provisioned

ssh $ssh_opts root@127.0.0.1 poweroff 2>/dev/null || true  # the connection may drop as the guest goes down
wait "$qemu_pid" || true
qemu_pid=
phase qemu_exited

qemu-img check -q -f qcow2 "$work/layer.qcow2"
qemu-img info -U --output=json "$work/layer.qcow2" > "$work/layer.json"
phase checked
