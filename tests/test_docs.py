"""The documentation matches the code it describes."""

from pathlib import Path

from edge.config import KEYS, markdown_table

ROOT = Path(__file__).resolve().parent.parent


def test_configuration_page_lists_every_key_as_the_code_does():
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert markdown_table() in page, "regenerate the table: scanedge config --markdown"


def test_example_config_mentions_every_key():
    example = (ROOT / "systemd" / "scanedge.toml.example").read_text(encoding="utf-8")
    missing = [k.name for k in KEYS if k.name not in example]
    assert not missing, missing


def test_readme_first_screen_has_the_two_commands_and_ci_runs_the_second():
    first_screen = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:25])
    assert "scripts/setup.sh demo" in first_screen and "scripts/setup.sh test" in first_screen
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "scripts/setup.sh test" in ci
