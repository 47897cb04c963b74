"""The repository stands on its own: the README's and the docs' links resolve, and nothing points
outside the repository (no ../shared, no DESIGN.md that a clone does not have)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.paths import BDS_DIR

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md"), BDS_DIR / "README.md"])
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(doc):
    text = doc.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        assert (doc.parent / target).exists(), f"{doc.name}: link to {target} does not exist"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_no_document_sends_the_reader_to_a_file_outside_the_repository(doc):
    text = doc.read_text(encoding="utf-8")
    assert "../shared" not in text
    for line in text.splitlines():
        if "DESIGN.md" in line:
            assert "calls this" in line, f"{doc.name} cites DESIGN.md, which is not in the repository: {line}"


def test_the_contract_documents_are_there():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name, must in [("recording-format.md", "t_s,fl_n,fr_n,bl_n,br_n"),
                       ("coordinates.md", "positive to the patient's right"),
                       ("analyze-output.md", "cop.ellipse95_area_mm2"),
                       ("api.md", "X-CSRF-Token")]:
        assert f"docs/{name}" in readme
        assert must in (REPO / "docs" / name).read_text(encoding="utf-8")


def test_the_reference_trials_and_their_licence_are_in_the_repository():
    bds = BDS_DIR
    reference = json.loads((bds / "reference.json").read_text(encoding="utf-8"))
    assert sorted(reference) == ["BDS00001", "BDS00004", "BDS00007", "BDS00010"]
    for trial in reference:
        assert (bds / f"{trial}.csv").stat().st_size > 100_000
    note = (bds / "README.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in note and "Santos" in note and "Duarte" in note


def test_no_test_or_benchmark_reads_the_shared_folder():
    for path in [*(REPO / "tests").rglob("*.py"), *(REPO / "benchmarks").glob("*.py")]:
        if path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8")
        assert '"shared"' not in text and "../shared" not in text, f"{path.relative_to(REPO)} reads ../shared"
