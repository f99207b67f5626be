#!/usr/bin/env bash
# Install (or upgrade) scanedge as a systemd service on Debian / Raspberry Pi OS (64-bit).
#
#   sudo systemd/install.sh              the edge service (+ daily backup timer)
#   sudo systemd/install.sh --hub        also the hub of the site
#   sudo systemd/install.sh --uninstall  remove units, rules and /opt/scanedge; keep data + config
#   sudo systemd/install.sh --uninstall --purge   ... and delete data and config too
#
#   --enroll STRING enrol the device with its hub: STRING is what `scanedge hub add-device ID`
#                   printed on the hub (hub URL, token, hub key, device id -> the config file)
#   --root DIR      install into DIR instead of / (tests, image building): no apt, no starting;
#                   units are enabled with `systemctl --root`
#   --no-packages   do not install system packages (they are already there)
#   --no-venv       do not create or update /opt/scanedge/venv
#
# Safe to run again: that is also how to upgrade (new code into the venv, a backup of the
# databases first, units restarted). An edited /etc/scanedge/scanedge.toml is never overwritten
# (--enroll changes only its hub_url, hub_token, hub_public_key and device_id).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
ROOT=""
HUB=0
UNINSTALL=0
PURGE=0
PACKAGES=1
VENV=1

ENROLL=""

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT=$(realpath -m "${2:?--root needs a directory}"); shift 2 ;;
        --root=*) ROOT=$(realpath -m "${1#--root=}"); shift ;;
        --hub) HUB=1; shift ;;
        --enroll) ENROLL="${2:?--enroll needs the string printed by scanedge hub add-device}"; shift 2 ;;
        --enroll=*) ENROLL="${1#--enroll=}"; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        --purge) PURGE=1; shift ;;
        --no-packages) PACKAGES=0; shift ;;
        --no-venv) VENV=0; shift ;;
        -h|--help) usage 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage 2 ;;
    esac
done
[ "$ROOT" = "/" ] && ROOT=""

SERVICE_USER=scanedge
OPT=/opt/scanedge
VENV_DIR=$OPT/venv
DATA=/var/lib/scanedge
CACHE=/var/cache/scanedge
ETC=/etc/scanedge
CONFIG=$ETC/scanedge.toml
UNIT_DIR=/etc/systemd/system
UDEV_RULES=/etc/udev/rules.d/70-scanedge.rules
SYSUSERS=/etc/sysusers.d/scanedge.conf
JOURNALD=/etc/systemd/journald.conf.d/scanedge.conf
UNITS=(scanedge.service scanedge-backup.service scanedge-backup.timer)
ALL_UNITS=("${UNITS[@]}" scanedge-hub.service)
[ "$HUB" -eq 1 ] && UNITS+=(scanedge-hub.service)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }
systemd_running() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo $0 $*)" >&2
    exit 1
fi

# ----------------------------------------------------------------------------- uninstall
if [ "$UNINSTALL" -eq 1 ]; then
    say "removing scanedge${ROOT:+ from $ROOT}"
    if systemd_running; then
        systemctl disable --now "${ALL_UNITS[@]}" 2>/dev/null || true
    elif [ -d "$ROOT$UNIT_DIR" ]; then
        systemctl --root="${ROOT:-/}" disable "${ALL_UNITS[@]}" >/dev/null 2>&1 || true
    fi
    for unit in "${ALL_UNITS[@]}"; do rm -f "$ROOT$UNIT_DIR/$unit"; done
    rm -f "$ROOT$UDEV_RULES" "$ROOT$JOURNALD" "$ROOT$SYSUSERS"
    rm -rf "$ROOT$OPT"
    if systemd_running; then
        systemctl daemon-reload
        udevadm control --reload 2>/dev/null || true
    fi
    if [ "$PURGE" -eq 1 ]; then
        rm -rf "$ROOT$DATA" "$ROOT$CACHE" "$ROOT$ETC"
        note "deleted $DATA, $CACHE and $ETC (the databases and the settings)"
    else
        note "kept: $DATA (databases, backups) and $ETC (settings); --purge deletes them"
    fi
    note "kept: the system user $SERVICE_USER (userdel $SERVICE_USER to remove it)"
    exit 0
fi

# ----------------------------------------------------------------------------- install
say "installing scanedge from $SRC${ROOT:+ into $ROOT}"

# 1. System packages: the one list in scripts/setup.sh.
if [ -n "$ROOT" ]; then
    note "system packages: skipped under --root (apt installs into / only)"
elif [ "$PACKAGES" -eq 1 ]; then
    "$SRC/scripts/setup.sh" packages
fi

# 2. The service user and its groups (lp, dialout, gpio -- created if missing, e.g. gpio on
#    plain Debian), through systemd-sysusers so that the same file also works for images.
install -D -m 0644 "$SRC/systemd/scanedge.sysusers" "$ROOT$SYSUSERS"
mkdir -p "$ROOT/etc"
if command -v systemd-sysusers >/dev/null; then
    systemd-sysusers --root="${ROOT:-/}" "$ROOT$SYSUSERS" >/dev/null
else  # no systemd tools (a bare container): the classic way
    [ -n "$ROOT" ] && { echo "install.sh: --root needs systemd-sysusers" >&2; exit 1; }
    for g in lp dialout gpio; do getent group "$g" >/dev/null || groupadd --system "$g"; done
    id "$SERVICE_USER" >/dev/null 2>&1 || useradd --system --user-group --home-dir "$DATA" \
        --no-create-home --shell /usr/sbin/nologin --comment "scanedge edge service" "$SERVICE_USER"
    usermod -a -G lp,dialout,gpio "$SERVICE_USER"
fi
# Numeric ids from the target's own passwd/group (under --root they are not the host's).
uid=$(awk -F: -v u="$SERVICE_USER" '$1 == u {print $3}' "$ROOT/etc/passwd")
gid=$(awk -F: -v u="$SERVICE_USER" '$1 == u {print $3}' "$ROOT/etc/group")
[ -n "$uid" ] && [ -n "$gid" ] || { echo "install.sh: user $SERVICE_USER was not created" >&2; exit 1; }
note "user $SERVICE_USER ($uid), groups: $(awk -F: -v u="$SERVICE_USER" \
    '$4 ~ "(^|,)" u "(,|$)" {printf "%s ", $1}' "$ROOT/etc/group")"

# 3. Directories: data writable by the service only; settings readable by it, owned by root.
install -d -m 0750 -o "$uid" -g "$gid" "$ROOT$DATA" "$ROOT$CACHE"
install -d -m 0750 -o 0 -g "$gid" "$ROOT$ETC"

# 4. An upgrade keeps the data: back up the databases with the code that wrote them, before the
#    new code arrives (the service also backs up edge.db before it migrates an older schema).
if [ -z "$ROOT" ] && [ -x "$VENV_DIR/bin/scanedge" ] && [ -f "$CONFIG" ] \
        && "$VENV_DIR/bin/scanedge" backup --help >/dev/null 2>&1; then
    say "backing up the databases before the upgrade"
    runuser -u "$SERVICE_USER" -- "$VENV_DIR/bin/scanedge" backup --config "$CONFIG" \
        | sed 's/^/    /' || note "backup failed: see above (continuing: nothing is deleted)"
fi

# 5. The program: a venv of its own under /opt (non-editable: the checkout can go away).
if [ "$VENV" -eq 1 ]; then
    py=${PYTHON:-python3}
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || { echo "install.sh: $py is older than 3.11" >&2; exit 1; }
    if [ ! -x "$ROOT$VENV_DIR/bin/python" ] \
            || ! "$ROOT$VENV_DIR/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        say "creating $VENV_DIR"
        rm -rf "$ROOT$VENV_DIR"
        "$py" -m venv "$ROOT$VENV_DIR"
        "$ROOT$VENV_DIR/bin/python" -m pip install -q --upgrade pip
    fi
    # RapidOCR (the waybill reader's default engine) is an extra plus a --no-deps step shared
    # with scripts/setup.sh; a GPIO chip (Raspberry Pi) adds the lgpio pin factory for gpiozero.
    extras="rapidocr"
    compgen -G "/dev/gpiochip*" >/dev/null && extras="$extras,gpio"
    say "installing scanedge into $VENV_DIR"
    "$ROOT$VENV_DIR/bin/python" -m pip install -q --upgrade "$SRC[$extras]"
    "$SRC/scripts/setup.sh" rapidocr "$ROOT$VENV_DIR/bin/python"
else
    note "venv: skipped (--no-venv)"
fi
install -D -m 0644 "$SRC/docs/deploy.md" "$ROOT$OPT/docs/deploy.md"

# 6. Settings: written once from the example; replaced on upgrade only if never edited.
example_old="$ROOT$ETC/scanedge.toml.example"
if [ ! -f "$ROOT$CONFIG" ] || { [ -f "$example_old" ] && cmp -s "$ROOT$CONFIG" "$example_old"; }; then
    fresh=$([ -f "$ROOT$CONFIG" ] && echo updated || echo written)
    tmp=$(mktemp)
    cp "$SRC/systemd/scanedge.toml.example" "$tmp"
    if [ "$HUB" -eq 1 ] && [ "$fresh" = written ]; then
        token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
        printf '\n# --- set by install.sh --hub ---\nhub_listen = "0.0.0.0:8090"\nhub_admin_token = "%s"\n' \
            "$token" >> "$tmp"
        note "hub admin token (for the order system; also in $CONFIG): $token"
    fi
    install -m 0640 -o 0 -g "$gid" "$tmp" "$ROOT$CONFIG"
    rm -f "$tmp"
    note "settings $fresh: $CONFIG"
else
    note "settings kept: $CONFIG (edited; new keys are listed in $CONFIG.example)"
fi
install -m 0644 "$SRC/systemd/scanedge.toml.example" "$example_old"
if [ -n "$ENROLL" ]; then
    # the standard library only (sync/enroll.py): works before and without the venv
    if ! PYTHONPATH="$SRC" "${PYTHON:-python3}" -m sync.enroll --config "$ROOT$CONFIG" \
            "$ENROLL" | sed 's/^/    /'; then
        echo "install.sh: --enroll failed (see above); $CONFIG is unchanged" >&2
        exit 2
    fi
fi

# 7. Units, journald limits, udev rules.
for unit in "${UNITS[@]}"; do
    install -D -m 0644 "$SRC/systemd/$unit" "$ROOT$UNIT_DIR/$unit"
done
journald_changed=0
if ! cmp -s "$SRC/systemd/journald-scanedge.conf" "$ROOT$JOURNALD"; then
    install -D -m 0644 "$SRC/systemd/journald-scanedge.conf" "$ROOT$JOURNALD"
    journald_changed=1
fi
rules=$(mktemp)
python3 "$SRC/systemd/udev_rules.py" "$SRC/printers/models.toml" > "$rules"
install -D -m 0644 "$rules" "$ROOT$UDEV_RULES"
rm -f "$rules"
note "units: ${UNITS[*]}; udev rules: $UDEV_RULES; journald: $JOURNALD"

# 8. Enable and (re)start.
if systemd_running; then
    systemctl daemon-reload
    if [ "$journald_changed" -eq 1 ]; then
        mkdir -p /var/log/journal
        systemctl restart systemd-journald || true
    fi
    udevadm control --reload
    udevadm trigger --action=change --subsystem-match=usb --subsystem-match=usbmisc \
        --subsystem-match=gpio || true
    say "enabling and starting ${UNITS[*]}"
    systemctl enable "${UNITS[@]}" >/dev/null 2>&1
    systemctl restart scanedge.service scanedge-backup.timer
    [ "$HUB" -eq 1 ] && systemctl restart scanedge-hub.service
    systemctl --no-pager --lines=0 status scanedge.service | sed 's/^/    /' || true
else
    systemctl --root="${ROOT:-/}" enable "${UNITS[@]}" >/dev/null 2>&1 \
        || note "could not enable the units (systemctl --root failed)"
    if [ -n "$ROOT" ]; then
        note "not starting anything: installed under --root $ROOT"
    else
        note "not starting: systemd is not running here (a container?); units are enabled for the next boot"
    fi
fi

# 9. Where the device is and what comes next.
listen=$(sed -n 's/^listen *= *"\(.*\)".*/\1/p' "$ROOT$CONFIG" | tail -1)
port=${listen##*:}
addr=$(hostname -I 2>/dev/null | awk '{print $1}')
addr=${addr:-$(hostname)}
device=$(sed -n 's/^device_id *= *"\(.*\)".*/\1/p' "$ROOT$CONFIG" | tail -1)
device=${device:-$(hostname)}
hub=$(sed -n 's/^hub_url *= *"\(.*\)".*/\1/p' "$ROOT$CONFIG" | tail -1)
say "done"
cat <<EOF
    This device:  http://$addr:${port:-8080}/   (device_id $device; health: /healthz)
    Logs:         journalctl -u scanedge -f
EOF
if [ -n "$ENROLL" ]; then
    cat <<EOF
    Enrolled:     hub $hub (its key is pinned: only commands it signed are obeyed)
    Next step:    printer = "usb://VID:PID" (lsusb) or tcp://, serial://; see $OPT/docs/deploy.md
EOF
else
    cat <<EOF
    Next steps:
      1. On the hub:   scanedge hub add-device $device      (prints an enrolment string)
      2. Here:         sudo $0 --enroll '<that string>'
         (or: scanedge enroll --config $CONFIG '<that string>'; systemctl restart scanedge)
      3. Printer: printer = "usb://VID:PID" (lsusb) or tcp://, serial://; see $OPT/docs/deploy.md
EOF
fi
if [ "$HUB" -eq 1 ]; then
    echo "    Hub:          http://$addr:8090/  (journalctl -u scanedge-hub)"
fi
