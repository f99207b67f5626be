"""Settings: defaults, TOML, SCANEDGE_* variables, one-line errors naming the key."""

import subprocess

import pytest

from scanedge.edge.config import ConfigError, load_settings
from tests.support import SCANEDGE, cli_env


def test_defaults_run_an_offline_device():
    s = load_settings(env={})
    assert s.listen == "127.0.0.1:8080"
    assert s.hub_url == "" and s.station == "bench-1"
    assert s.printer == f"preview://{s.data_dir / 'labels'}"
    assert s.hub_database.endswith("hub.db")


def test_file_then_environment_wins(tmp_path):
    cfg = tmp_path / "scanedge.toml"
    cfg.write_text('station = "bench-7"\nlisten = "0.0.0.0:9000"\ndata_dir = "/tmp/x"\n')
    s = load_settings(cfg, env={"SCANEDGE_STATION": "bench-9"})
    assert (s.station, s.listen, str(s.data_dir)) == ("bench-9", "0.0.0.0:9000", "/tmp/x")
    assert s.printer == "preview:///tmp/x/labels"  # default follows data_dir


@pytest.mark.parametrize("env, fragment", [
    ({"SCANEDGE_LISTEN": "8080"}, "listen = '8080': expected HOST:PORT"),
    ({"SCANEDGE_PRINTER": "lpt1"}, "printer = 'lpt1': expected a printer address"),
    ({"SCANEDGE_HUB_URL": "ftp://hub"}, "hub_url"),
    ({"SCANEDGE_HTTP_THREADS": "many"}, "http_threads (SCANEDGE_HTTP_THREADS) = 'many'"),
    ({"SCANEDGE_STATION": "bench 1"}, "station"),
    ({"SCANEDGE_STATOIN": "x"}, "unknown environment variable SCANEDGE_STATOIN"),
])
def test_bad_values_name_the_key(env, fragment):
    with pytest.raises(ConfigError) as e:
        load_settings(env=env)
    assert fragment in str(e.value)


def test_bad_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("listen = [1, 2]\n")
    with pytest.raises(ConfigError, match="listen"):
        load_settings(cfg, env={})
    cfg.write_text("colour = 'red'\n")
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        load_settings(cfg, env={})
    cfg.write_text("not toml ===\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg, env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", env={})


def test_bad_value_stops_the_start_with_one_line(tmp_path):
    env = cli_env(tmp_path / "var", SCANEDGE_LISTEN="nonsense")
    proc = subprocess.run([SCANEDGE, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "scanedge serve: listen = 'nonsense': expected HOST:PORT, e.g. 127.0.0.1:8080"]


def test_every_printer_scheme_the_settings_accept_has_a_transport_and_no_other():
    """One table of schemes (printers/address.py): the settings check it, the transports build
    from it; an address of each scheme with its parts missing is refused with the table's form."""
    from scanedge.printers.address import SCHEMES
    from scanedge.printers.transports import make_transport

    for scheme, form in SCHEMES.items():
        try:
            make_transport(f"{scheme}://", status=False)
        except ValueError as e:
            assert form in str(e), (scheme, e)
    with pytest.raises(ValueError, match="unknown scheme"):
        make_transport("lpt://1")
    with pytest.raises(ConfigError, match="a printer address: tcp://"):
        load_settings(env={"SCANEDGE_PRINTER": "lpt://1"})
