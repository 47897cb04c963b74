"""Once started, the station takes what start-up made out of the garbage collector's scans."""

import gc

from station.commands.run import settle_memory


def test_after_settling_a_full_collection_walks_only_what_was_made_since():
    try:
        settle_memory()
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # this test process: pytest, numpy, the station's modules
        made_since = [object() for _ in range(10)]
        assert len(gc.get_objects()) < frozen / 10  # what a full collection now walks
        assert made_since
    finally:
        gc.unfreeze()
