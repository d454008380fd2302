"""scripts/train_speed: the sentence about other processes follows the sampled load averages."""
from __future__ import annotations

from scripts.train_speed import load_note


def test_other_processes_are_claimed_only_when_the_load_exceeds_our_threads():
    assert "no sign of other processes" in load_note([1.0, 2.0], threads=2, cores=2)
    busy = load_note([3.1, 5.7], threads=2, cores=2)
    assert "about 4 other runnable process(es) shared the cores" in busy and "5.7" in busy
    assert load_note([None, None], threads=1, cores=2) == "load average unknown"
