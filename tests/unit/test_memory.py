"""The estimate of what select holds at once, checked before a run."""

from transforms.select import memory
from transforms.select.config import DedupConfig
from transforms.select.dedup import DedupParams

PARAMS = DedupParams.of(DedupConfig())  # 256 key shards


def test_a_paragraph_costs_its_exact_row_and_a_row_a_band():
    exact_only = DedupParams.of(DedupConfig(near=False))
    assert 20 < memory.entry_bytes(exact_only) < 60
    assert memory.entry_bytes(PARAMS) > PARAMS.bands * 20


def test_compressed_files_hold_more_text_than_they_store():
    assert memory.text_bytes("tel.txt.xz", 100) > memory.text_bytes("tel.txt.gz", 100) > memory.text_bytes("tel.txt", 100) == 100


def test_a_shard_is_a_share_of_the_language_that_more_shards_shrink():
    text = 10 * 2**30
    assert memory.shard_bytes(text, PARAMS.sharded(512)) * 2 == memory.shard_bytes(text, PARAMS.sharded(256))


def test_a_language_too_big_for_the_machine_is_refused_with_the_shards_that_fit():
    gb = 2**30
    assert memory.check({"tel": 2 * gb}, {"tel": PARAMS}, workers=2, available=24 * gb) is None
    reason = memory.check({"tel": 2 * gb, "eng": 2000 * gb}, {"tel": PARAMS, "eng": PARAMS}, 2, 24 * gb)
    assert reason and "eng" in reason and "languages.eng.select.dedup.shards" in reason
    shards = int(reason.split("dedup.shards to ")[1].split()[0])
    assert memory.check({"eng": 2000 * gb}, {"eng": PARAMS.sharded(shards)}, 2, 24 * gb) is None
    assert memory.check({"eng": 2000 * gb}, {"eng": PARAMS}, 2, None) is None  # memory unknown: no check
