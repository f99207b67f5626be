"""The documentation matches the code it describes."""

import os
from pathlib import Path

from scanedge.edge.config import KEYS, markdown_table

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


SOURCE_SUFFIXES = {".py", ".md", ".toml", ".sh", ".html", ".js", ".json", ".txt"}
SKIPPED_DIRS = {".git", ".venv", "build", "var", "node_modules"}


def _skipped(name: str) -> bool:
    return name in SKIPPED_DIRS or name.endswith(".egg-info")


def _repo_files():
    # os.walk, pruned: the skipped folders are not walked at all (.venv alone is ~27,000 files)
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if not _skipped(d))
        for name in sorted(files):
            path = Path(folder) / name
            if path.suffix in SOURCE_SUFFIXES and not _skipped(name) and path.is_file():
                yield path


def test_nothing_points_at_a_design_note_outside_the_repo():
    """The interfaces live in docs/interfaces.md; the design note they came from is not here."""
    import re

    outside = re.compile(r"DESIGN(\.md|'s\b|/)")
    found = [f"{p.relative_to(ROOT)}:{n}" for p in _repo_files()
             for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
             if outside.search(line)]
    assert not found, "point at docs/interfaces.md instead: " + ", ".join(found)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    import re

    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_to_a_section_of_a_page_find_that_section():
    import re

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", page.read_text(encoding="utf-8")):
            linked = (page.parent / target).resolve() if target else page
            headings = [line.lstrip("#") for line in linked.read_text(encoding="utf-8").splitlines()
                        if line.startswith("#")] if linked.is_file() else []
            if anchor not in {_slug(h) for h in headings}:
                broken.append(f"{page.relative_to(ROOT)}: {target}#{anchor}")
    assert not broken, broken
