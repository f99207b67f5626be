"""Enrolment: one string from the hub tells a device where its hub is, who it is there, and which
key signs the hub's commands (docs/security.md, "Enrolment and hub identity").

On the hub, ``scanedge hub add-device ID [--site S] [--url URL]`` registers the device and prints

    scanedge-enroll-1:<base64url of {"hub_url", "hub_token", "hub_public_key", "device_id", "site"}>

and on the device ``scanedge enroll STRING [--config FILE]`` (or ``systemd/install.sh --enroll
STRING``) writes ``hub_url``, ``hub_token``, ``hub_public_key`` and ``device_id`` into its config
file: the keys already there are changed in place (their comments kept), the others appended in a
block of their own; nothing else in the file changes. The string holds the device's token: hand it
over like a password.

Standard library only, so that install.sh can run it before any venv exists:
``PYTHONPATH=<checkout> python3 -m sync.enroll --config FILE STRING``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import re
import sys
import tempfile
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

PREFIX = "scanedge-enroll-1:"
DEFAULT_CONFIG = Path("/etc/scanedge/scanedge.toml")  # where systemd/install.sh puts it
KEYS = ("hub_url", "hub_token", "hub_public_key", "device_id")  # written, in this order
_URL_RE = re.compile(r"https?://[^/\s\"'\\]+(/[^\s\"'\\]*)?")
_ID_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_TOKEN_RE = re.compile(r"[A-Za-z0-9_\-]{16,512}")


class EnrollError(ValueError):
    """A bad enrolment string or a config file that cannot take it (one line for the user)."""


def make_enrollment(hub_url: str, device_id: str, token: str, public_key: str,
                    site: str) -> str:
    doc = {"hub_url": hub_url, "hub_token": token, "hub_public_key": public_key,
           "device_id": device_id, "site": site}
    check_values(doc)
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def check_values(doc: Mapping[str, object]) -> dict[str, str]:
    """The four settings of an enrolment, each checked; EnrollError names the first bad one."""
    out = {}
    for key in KEYS:
        value = doc.get(key)
        if not isinstance(value, str) or not value:
            raise EnrollError(f"the enrolment string has no {key}")
        out[key] = value
    if not _URL_RE.fullmatch(out["hub_url"]):
        raise EnrollError(f"hub_url {out['hub_url']!r}: expected http(s)://HOST[:PORT]")
    if not _TOKEN_RE.fullmatch(out["hub_token"]):
        raise EnrollError("hub_token: not a token made by `scanedge hub add-device`")
    if not _ID_RE.fullmatch(out["device_id"]):
        raise EnrollError(f"device_id {out['device_id'][:64]!r}: 1-64 letters, digits, '.', "
                          "'_' or '-'")
    try:
        key = base64.b64decode(out["hub_public_key"].encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        key = b""
    if len(key) != 32:
        raise EnrollError("hub_public_key: not an Ed25519 public key in base64")
    return out


def parse_enrollment(text: str) -> dict[str, str]:
    """The settings in an enrolment string (plus ``site``, for information)."""
    text = "".join(text.split())  # a string wrapped by a terminal or an e-mail still reads
    if not text.startswith(PREFIX):
        raise EnrollError(f"not an enrolment string (it starts with {PREFIX!r}; "
                          "`scanedge hub add-device ID` on the hub prints one)")
    body = text[len(PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        doc = json.loads(raw)
    except (binascii.Error, ValueError):
        raise EnrollError("the enrolment string is damaged (cut short, or a character changed): "
                          "copy it again") from None
    if not isinstance(doc, dict):
        raise EnrollError("the enrolment string is damaged: copy it again")
    values = check_values(doc)
    site = doc.get("site")
    values["site"] = site if isinstance(site, str) and _ID_RE.fullmatch(site) else "?"
    return values


def _toml_string(value: str) -> str:
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _active_line(key: str) -> re.Pattern[str]:
    # key = "string" or 'string', with an optional comment after it
    return re.compile(rf"^(\s*{re.escape(key)}\s*=\s*)(\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|\S*)"
                      rf"([ \t]*(?:#.*)?)$")


def edit_config(text: str, values: Mapping[str, str], stamp: str) -> str:
    """``text`` with ``values`` set: keys already set are changed on their own line (a comment
    after the value stays); the others are appended under a comment. Raises EnrollError when
    the file is not TOML, or the result would not read back as intended."""
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise EnrollError(f"the config file is not valid TOML ({e}): fix it first") from None
    lines = text.splitlines(keepends=True)
    missing = []
    for key, value in values.items():
        pattern = _active_line(key)
        hits = [i for i, line in enumerate(lines) if pattern.match(line.rstrip("\r\n"))]
        if not hits:
            missing.append(f"{key} = {_toml_string(value)}\n")
            continue
        i = hits[-1]
        ending = lines[i][len(lines[i].rstrip("\r\n")):] or "\n"
        m = pattern.match(lines[i].rstrip("\r\n"))
        assert m is not None
        lines[i] = f"{m.group(1)}{_toml_string(value)}{m.group(3)}{ending}"
    if missing:
        # top-level keys go before the first [table] (settings have none, but be safe)
        at = next((i for i, line in enumerate(lines) if re.match(r"\s*\[", line)), len(lines))
        block = [f"# --- set by `scanedge enroll` ({stamp}) ---\n", *missing]
        if at > 0 and not lines[at - 1].endswith("\n"):
            lines[at - 1] += "\n"
        if at > 0 and lines[at - 1].strip():
            block.insert(0, "\n")
        lines[at:at] = block
    result = "".join(lines)
    try:
        after = tomllib.loads(result)
    except tomllib.TOMLDecodeError:
        after = None
    expected = {**before, **values}
    if after != expected:
        raise EnrollError("the config file has a shape this command does not edit safely "
                          "(a multi-line value?): set " + ", ".join(values) + " by hand")
    return result


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` keeping its owner and mode (the config holds tokens: 0640 root:scanedge
    under install.sh), or make it 0600."""
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if st is not None:
            os.chmod(tmp, st.st_mode & 0o7777)
            if os.geteuid() == 0:
                os.chown(tmp, st.st_uid, st.st_gid)
        else:
            os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def choose_config(config: str | None) -> Path:
    """The file to write: ``--config``, else the installed one; never a guess elsewhere."""
    if config:
        return Path(config)
    if DEFAULT_CONFIG.exists():
        return DEFAULT_CONFIG
    raise EnrollError(f"which config file? give --config FILE (the file `scanedge serve --config` "
                      f"reads; {DEFAULT_CONFIG} under systemd/install.sh, which does not exist "
                      "here)")


def enroll(string: str, config: str | None, env: Mapping[str, str] | None = None) -> list[str]:
    """Write the enrolment into the config file; returns the lines to tell the user."""
    values = parse_enrollment(string)
    site = values.pop("site")
    path = choose_config(config)
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else (
            "# scanedge settings (docs/configuration.md)\n")
    except (OSError, UnicodeDecodeError) as e:
        raise EnrollError(f"config file {path} cannot be read: {e}") from None
    stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    new = edit_config(text, values, stamp)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, new)
    except OSError as e:
        raise EnrollError(f"config file {path} cannot be written: {e}") from None
    out = [f"enrolled as device {values['device_id']} (site {site}) with the hub at "
           f"{values['hub_url']}; written to {path}: {', '.join(values)}"]
    env = os.environ if env is None else env
    overridden = [f"SCANEDGE_{k.upper()}" for k in values if f"SCANEDGE_{k.upper()}" in env]
    if overridden:
        out.append(f"warning: {', '.join(overridden)} set in the environment win over the file")
    out.append("restart the service to use it: systemctl restart scanedge")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sync.enroll",
                                     description="write an enrolment string into a config file")
    parser.add_argument("--config", metavar="FILE")
    parser.add_argument("string")
    args = parser.parse_args(argv)
    try:
        for line in enroll(args.string, args.config):
            print(line)
    except EnrollError as e:
        print(f"scanedge enroll: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
