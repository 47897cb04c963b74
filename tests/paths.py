"""Where the tests' files are: the repository, and the real force-plate trials (named here only)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: four real trials of the public BDS data set (Santos & Duarte 2016, CC BY 4.0) and their published values
BDS_DIR = REPO / "tests" / "data" / "bds"
