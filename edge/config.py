"""Settings: one TOML file plus ``SCANEDGE_<KEY>`` environment variables (the variable wins).

With neither, the defaults run a working offline device. Every key is declared once in ``KEYS``
with its type, default and a check; a bad value stops the start with one line naming the key and
what is allowed (:class:`ConfigError`).
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "SCANEDGE_"
# Variables with our prefix that are not settings (tooling, tests).
IGNORED_ENV = frozenset({"SCANEDGE_TEST_KEEP", "SCANEDGE_FAULT"})


class ConfigError(ValueError):
    """A setting is missing, unknown or has a value that is not allowed."""


def _host_port(value: str) -> str | None:
    m = re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):(\d{1,5})", value)
    if not m or not 0 < int(m.group(2)) < 65536:
        return "HOST:PORT, e.g. 127.0.0.1:8080"
    return None


def _printer(value: str) -> str | None:
    from scanedge.printers.address import address_problem  # the one table of schemes

    return address_problem(value)


def _hub_url(value: str) -> str | None:
    if value and not re.match(r"https?://[^/\s]+", value):
        return "empty (offline) or an http:// or https:// URL"
    return None


def _station(value: str) -> str | None:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", value):
        return "1-64 characters of letters, digits, '.', '_' or '-'"
    return None


def _positive(value: float) -> str | None:
    return None if value > 0 else "a number greater than 0"


def _countdown(value: float) -> str | None:
    from scanedge.edge.domain.countdown import valid_seconds

    try:
        valid_seconds(value)
    except ValueError as e:
        return str(e)
    return None


def _countdown_by_category(value: str) -> str | None:
    from scanedge.edge.domain.countdown import parse_by_category

    try:
        parse_by_category(value)
    except ValueError as e:
        return str(e)
    return None


def _hub_public_key(value: str) -> str | None:
    if not value:
        return None
    from scanedge.sync.signing import check_public_key  # cryptography only when a key is configured

    return check_public_key(value)


def _waybill_rules(value: str) -> str | None:
    from scanedge.edge.domain.distributor_rules import parse_waybill_rules

    try:
        parse_waybill_rules(value)
    except ValueError as e:
        return str(e)
    return None


def _problem(parse: Callable[[str], object], value: str) -> str | None:
    """A parser's ValueError as a setting's problem (None: it parses)."""
    try:
        parse(value)
    except ValueError as e:
        return str(e)
    return None


def _scale(value: str) -> str | None:
    from scanedge.edge.domain.scale import parse_scale_address

    return _problem(parse_scale_address, value)


def _tolerance(value: str) -> str | None:
    from scanedge.edge.domain.weighing import parse_tolerance

    return _problem(parse_tolerance, value)


def _not_negative(value: float) -> str | None:
    return None if value >= 0 else "a number of 0 or more"


def _hub_blobs(value: str) -> str | None:
    if value and not re.match(r"(file://|s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/|$|\?))", value):
        return "empty (DATA_DIR/hub-blobs), file:///PATH or s3://BUCKET/PREFIX?endpoint_url=..."
    return None


def _choice(*allowed: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in allowed else "one of " + ", ".join(allowed)

    return check


@dataclass(frozen=True)
class Key:
    """One setting: its type, its default (a value or a function of the settings read so far)."""

    name: str
    type: type
    default: Any
    check: Callable[[Any], str | None] | None = None
    help: str = ""


def _default_hub_database(values: Mapping[str, Any]) -> str:
    return str(Path(values["data_dir"]) / "hub.db")


def _default_printer(values: Mapping[str, Any]) -> str:
    return f"preview://{Path(values['data_dir']) / 'labels'}"


# The order matters: a default may depend on keys declared above it (data_dir first).
KEYS: tuple[Key, ...] = (
    Key("data_dir", str, "./var", help="SQLite databases, captures, previews"),
    Key("listen", str, "127.0.0.1:8080", _host_port, "edge HTTP address"),
    Key("device_id", str, lambda v: socket.gethostname(), _station, "who this device is"),
    Key("station", str, "bench-1", _station, "which bench or PDA gateway"),
    Key("hub_url", str, "", _hub_url, "the hub; empty = offline"),
    Key("hub_token", str, "", help="this device's token at the hub"),
    Key("printer", str, _default_printer, _printer, "printer address"),
    Key("printer_model", str, "generic-80", help="row of printers/models.toml (paper, image mode, buzzer)"),
    Key("paper", str, "", _choice("", "58", "80", "100x150", "100x180"), "label paper; empty = the model's"),
    Key("label_template", str, "", help="printers/templates name or .toml path; empty = standard"),
    Key("label_font", str, "", help="CJK TrueType font for labels; empty = found by fc-match"),
    Key("hub_listen", str, "127.0.0.1:8090", _host_port, "hub HTTP address"),
    Key("hub_database", str, _default_hub_database, help="SQLite path or postgresql:// URL"),
    Key("hub_admin_token", str, "", help="order-system token; generated at first start"),
    Key("http_threads", int, 24, _positive,
        "threads for the API's requests (page streams and the common scan request are served "
        "from the event loop, not these)"),
    Key("page_streams_max", int, 1000, _positive,
        "live page streams open at once; one more is answered 503 and retries"),
    Key("max_body_mb", float, 20.0, _positive, "largest HTTP request body accepted"),
    Key("log_level", str, "info", _choice("debug", "info", "warning", "error"), "log verbosity"),
    Key("hub_threads", int, 16, _positive,
        "hub threads for device requests (push, pull, acks); streams take none"),
    Key("min_free_mb", float, 200.0, _positive, "below this free disk space new work is refused"),
    Key("outbox_retention_days", float, 7.0, _positive, "keep hub-acknowledged events this long"),
    Key("sync_poll_s", float, 2.0, _positive, "pull interval while the hub stream is down"),
    Key("hub_timeout_s", float, 10.0, _positive, "how long a push or pull waits for the hub"),
    Key("max_image_mb", float, 20.0, _positive, "largest image file decoded (photos, uploads)"),
    Key("max_image_megapixels", float, 40.0, _positive, "largest image size decoded"),
    Key("decode_budget_ms", int, 300, _positive, "time budget of one barcode decode"),
    Key("waybill_ocr_engine", str, "auto", _choice("auto", "tesseract", "tesserocr", "rapidocr"),
        "waybill text engine; auto = rapidocr, else tesserocr, else pytesseract (installed)"),
    Key("backup_keep", int, 10, _positive, "SQLite backups kept per database (scanedge backup)"),
)
KEYS += (  # freeze interception (docs/freeze.md)
    Key("hub_public_key", str, "", _hub_public_key,
        "the hub's command-signing key (written by `scanedge enroll`); empty = signed commands "
        "are refused (see hub_trust_first_key)"),
    Key("offline_print", str, "allow", _choice("allow", "hold_p0", "hold_all"),
        "printing while the hub is silent (freeze status unknown): allow, hold P0 jobs, hold all"),
    Key("offline_after_s", float, 15.0, _positive, "hub silent this long = freeze status unknown"),
    Key("conflict_window_s", float, 15.0, _positive,
        "hub: an expedite and a cancel closer than this need a supervisor's decision"),
    Key("countdown_s", float, 15.0, _countdown,
        "hub: seconds a cancel, address change or note has to reach every device of the site"),
    Key("countdown_by_category", str, "", _countdown_by_category,
        'hub: countdown per order category, a JSON object {"fresh": 5}; empty = countdown_s'),
    Key("gpio_buzzer_pin", str, "", help="GPIO pin of the alarm buzzer (gpiozero name); empty = none"),
    Key("gpio_led_pin", str, "", help="GPIO pin of the red alarm LED (gpiozero name); empty = none"),
)
KEYS += (  # waybill capture (docs/waybill.md)
    Key("waybill_retention_days", float, 30.0, _positive, "keep captured waybill photos this long"),
    Key("waybill_captures_max_mb", float, 2000.0, _positive,
        "disk space for captured waybill photos; the oldest go first"),
    Key("waybill_auto_attach", float, 0.95, _positive,
        "attach a read number to its order without a tap from this confidence (above 1 = never)"),
    Key("waybill_rules", str, "", _waybill_rules,
        "per-distributor tracking-number rules, a JSON object (docs/waybill.md); empty = none"),
)
KEYS += (  # image work: memory (docs/decode.md)
    Key("image_memory_mb", float, 256.0, _positive,
        "memory for decodes and waybill reads at once; each reserves its estimate, the rest "
        "wait (docs/decode.md)"),
)
KEYS += (  # a hub for a fleet (docs/scaling.md)
    Key("hub_admin_threads", int, 8, _positive,
        "hub threads kept for the order system and admin API, whatever the devices do"),
    Key("hub_streams_per_device", int, 2, _positive,
        "open streams per device token; one more closes the oldest"),
    Key("hub_pull_rate", float, 5.0, _positive, "pulls per second per device (then 429)"),
    Key("hub_pull_burst", float, 20.0, _positive, "pulls a device may make at once"),
    Key("hub_push_rate", float, 20.0, _positive, "pushes per second per device (then 429)"),
    Key("hub_push_burst", float, 60.0, _positive, "pushes a device may make at once"),
    Key("hub_stream_rate", float, 0.5, _positive, "stream (re)connects per second per device"),
    Key("hub_stream_burst", float, 5.0, _positive, "stream connects a device may make at once"),
    Key("hub_reread_s", float, 5.0, _positive,
        "hub: re-read the change log this often without a wake-up (a safety net: commits in this "
        "process and PostgreSQL NOTIFYs from others wake the streams at once)"),
)
KEYS += (  # the packing bench's guarantees (docs/printing.md)
    Key("print_policy", str, "strict", _choice("strict", "warn", "off"),
        "labels only for verified orders: strict refuses, warn prints and records, off"),
    Key("p0_blocks_others", bool, True, help="while a P0 label waits or prints, other labels wait"),
    Key("notify_url", str, "", _hub_url,
        "webhook for P0 orders and tripped fuses (JSON POST, retried); empty = none"),
)
KEYS += (  # the bench's scale and weight check (docs/scale.md)
    Key("scale", str, "none", _scale,
        "the bench's scale: serial:///dev/ttyUSB0?baud=9600&protocol=auto (or continuous, sics), "
        "tcp://HOST:PORT?protocol=..., or none"),
    Key("weight_tolerance", str, "0.05kg, 5%", _tolerance,
        "how far the weighed parcel may be from its expected weight: an absolute part, a "
        "percentage or both (the larger allowance wins)"),
    Key("packaging_weight_kg", float, 0.0, _not_negative,
        "the box and filling, added to the items' unit weights (not to an order's expected_weight_kg)"),
)
KEYS += (  # sign-in (docs/security.md)
    Key("session_hours", float, 12.0, _positive, "a sign-in at a station lasts this long (a shift)"),
    Key("tls_cert", str, "", help="PEM certificate for HTTPS on `listen`; empty = plain HTTP "
        "(or TLS at a reverse proxy)"),
    Key("tls_key", str, "", help="PEM private key of tls_cert"),
)
KEYS += (  # enrolment and hub identity (docs/security.md)
    Key("hub_trust_first_key", bool, False, None,
        "with no hub_public_key: trust the first hub key seen (trust on first use); else "
        "signed commands are refused until `scanedge enroll`"),
)
KEYS += (  # returns (docs/returns.md)
    Key("returns_photo_retention_days", float, 180.0, _positive,
        "keep photos of returned goods this long (the refund's evidence)"),
    Key("returns_photos_max_mb", float, 2000.0, _positive,
        "disk space for photos of returned goods; the oldest go first"),
)
KEYS += (  # the dock handover (docs/dock.md)
    Key("dock_lookback_hours", float, 24.0, _positive,
        "the dock expects labels printed here this many hours back: older ones are not listed "
        "as printed but never scanned"),
)
KEYS += (  # carrier e-waybills (docs/carriers.md)
    Key("hub_carrier_accounts", str, "", help="hub: TOML file of each site's carrier accounts "
        "(secrets: keep it 0600); empty = no e-waybills"),
)
KEYS += (  # pack evidence: video and photos of the packing (docs/evidence.md)
    Key("evidence_policy", str, "off", _choice("off", "require_video", "require_photo"),
        "no label or tracking number before the packing's video (require_video) or photo "
        "(require_photo) is stored on the device; off = not asked"),
    Key("pack_video_min_s", float, 10.0, _positive, "shortest pack video that counts, seconds"),
    Key("evidence_clip_max_mb", float, 200.0, _positive, "largest pack video or photo accepted"),
    Key("evidence_max_mb", float, 20000.0, _positive,
        "disk space for pack videos and photos on the device; the oldest go first"),
    Key("evidence_retention_days", float, 30.0, _positive,
        "keep pack videos and photos on the device this long (none goes before the hub has it)"),
    Key("evidence_upload_mbps", float, 4.0, _positive,
        "upload pack evidence to the hub at most this fast (MB/s), so scans stay fast"),
    Key("hub_blobs", str, "", _hub_blobs,
        "hub: where uploaded pack evidence is kept: empty = DATA_DIR/hub-blobs on disk, "
        "file:///PATH, or s3://BUCKET/PREFIX?endpoint_url=...&region=... (MinIO, Ceph, AWS)"),
)
KEY_NAMES = frozenset(k.name for k in KEYS)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    listen: str
    device_id: str
    station: str
    hub_url: str
    hub_token: str
    printer: str
    printer_model: str
    paper: str
    label_template: str
    label_font: str
    hub_listen: str
    hub_database: str
    hub_admin_token: str
    http_threads: int
    page_streams_max: int
    max_body_mb: float
    log_level: str
    hub_threads: int
    min_free_mb: float
    outbox_retention_days: float
    sync_poll_s: float
    hub_timeout_s: float
    max_image_mb: float
    max_image_megapixels: float
    decode_budget_ms: int
    waybill_ocr_engine: str
    backup_keep: int
    hub_public_key: str
    offline_print: str
    offline_after_s: float
    conflict_window_s: float
    countdown_s: float
    countdown_by_category: str
    gpio_buzzer_pin: str
    gpio_led_pin: str
    waybill_retention_days: float
    waybill_captures_max_mb: float
    waybill_auto_attach: float
    waybill_rules: str
    image_memory_mb: float
    hub_admin_threads: int
    hub_streams_per_device: int
    hub_pull_rate: float
    hub_pull_burst: float
    hub_push_rate: float
    hub_push_burst: float
    hub_stream_rate: float
    hub_stream_burst: float
    hub_reread_s: float
    print_policy: str
    p0_blocks_others: bool
    scale: str
    weight_tolerance: str
    packaging_weight_kg: float
    notify_url: str
    session_hours: float
    tls_cert: str
    tls_key: str
    hub_trust_first_key: bool
    returns_photo_retention_days: float
    returns_photos_max_mb: float
    dock_lookback_hours: float
    hub_carrier_accounts: str
    evidence_policy: str
    pack_video_min_s: float
    evidence_clip_max_mb: float
    evidence_max_mb: float
    evidence_retention_days: float
    evidence_upload_mbps: float
    hub_blobs: str
    source: str = field(default="defaults", compare=False)

    @property
    def edge_db_path(self) -> Path:
        return self.data_dir / "edge.db"

    @property
    def listen_host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


assert {f.name for f in fields(Settings)} - {"source"} == KEY_NAMES, "KEYS and Settings disagree"


def _coerce(key: Key, raw: Any, origin: str) -> Any:
    where = f"{key.name} ({origin})"
    if key.type is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in {"1", "true", "yes", "on", "0", "false", "no"}:
            return raw.lower() in {"1", "true", "yes", "on"}
        raise ConfigError(f"{where} = {raw!r}: expected true or false")
    if key.type in (int, float):
        if isinstance(raw, bool):
            raise ConfigError(f"{where} = {raw!r}: expected a number")
        try:
            return key.type(raw)
        except (TypeError, ValueError):
            kind = "a whole number" if key.type is int else "a number"
            raise ConfigError(f"{where} = {raw!r}: expected {kind}") from None
    if not isinstance(raw, str):
        raise ConfigError(f"{where} = {raw!r}: expected a string")
    return raw.strip()


def load_settings(
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Read the TOML file (if any), then the environment, then explicit overrides."""
    env = os.environ if env is None else env
    file_values: dict[str, Any] = {}
    if config_file is not None:
        path = Path(config_file)
        try:
            file_values = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"config file {path} cannot be read: {e}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
        unknown = sorted(set(file_values) - KEY_NAMES)
        if unknown:
            raise ConfigError(
                f"config file {path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(KEY_NAMES))})"
            )
    unknown_env = sorted(
        name for name in env if name.startswith(ENV_PREFIX)
        and name[len(ENV_PREFIX):].lower() not in KEY_NAMES
        and name not in IGNORED_ENV
    )
    if unknown_env:
        raise ConfigError(f"unknown environment variable {unknown_env[0]}")

    values: dict[str, Any] = {}
    for key in KEYS:
        env_name = ENV_PREFIX + key.name.upper()
        if key.name in overrides and overrides[key.name] is not None:
            value = _coerce(key, overrides[key.name], "command line")
        elif env_name in env:
            value = _coerce(key, env[env_name], env_name)
        elif key.name in file_values:
            value = _coerce(key, file_values[key.name], str(config_file))
        else:
            value = key.default(values) if callable(key.default) else key.default
        if key.check is not None:
            problem = key.check(value)
            if problem:
                raise ConfigError(f"{key.name} = {value!r}: expected {problem}")
        values[key.name] = value

    values["data_dir"] = Path(values["data_dir"])
    return Settings(**values, source=str(config_file) if config_file else "defaults")


def markdown_table() -> str:
    """The settings as docs/configuration.md lists them (``scanedge config --markdown``)."""
    rows = ["| key | variable | default | meaning |", "| --- | --- | --- | --- |"]
    for key in KEYS:
        default = "(computed)" if callable(key.default) else repr(key.default)
        rows.append(f"| `{key.name}` | `{ENV_PREFIX}{key.name.upper()}` | {default} | {key.help} |")
    return "\n".join(rows)
