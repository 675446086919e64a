import numpy as np
import pytest

from pipeline.config import DedupConfig
from transforms import dedup

P = [("f", d, 0) for d in range(10)]  # positions, in order


def components(links):
    fn = dedup.ConnectedComponents()
    acc = fn.create_accumulator()
    for link in links:
        acc = fn.add_input(acc, link)
    return fn.extract_output(acc)


def test_lsh_params_are_steep_around_the_threshold():
    bands, rows, matches = dedup.lsh_params(0.55, 128)
    assert bands * rows <= 128 and rows >= dedup.MIN_ROWS
    p = lambda s: float(dedup.collision_probability(s, bands, rows, matches))  # noqa: E731
    assert p(0.8) > 0.99 and p(0.3) < 0.01 and p(0.4) < 0.05


def test_bands_given_in_config_are_used():
    assert dedup.bands_of(DedupConfig(num_perm=128, bands=16, min_band_matches=2)) == (16, 8, 2)
    with pytest.raises(ValueError):
        dedup.bands_of(DedupConfig(num_perm=128, bands=200))


def test_band_keys_differ_by_band_and_value():
    sig = np.arange(12, dtype=np.uint32)
    keys = dedup.band_keys(sig, 3, 4)
    assert len(set(keys)) == 3
    assert dedup.band_keys(sig.copy(), 3, 4) == keys


def test_exact_key_normalises():
    assert dedup.exact_key("Hola, mundo.") == dedup.exact_key("hola mundo")
    assert dedup.exact_key("hola mundo") != dedup.exact_key("hola mundos")


def test_band_pairs_count_each_text_once():
    members = [(P[3], b"t1", 10), (P[1], b"t1", 10), (P[2], b"t2", 12)]
    assert list(dedup.band_pairs(b"k", members, 2)) == [(((P[1], 10), (P[2], 12)), 1)]


def test_components_keep_the_most_copied_then_shortest_then_earliest():
    links = [
        ("near", P[0], P[1], 50, 50),
        ("near", P[1], P[2], 50, 48),  # transitively linked to P[0]
        ("exact", P[2], P[5], 48, 48),
        ("near", P[6], P[7], 40, 40),  # another component: a tie goes to the earliest
    ]
    out = components(links)
    assert out == {
        P[0]: ("near_duplicate", P[2]),
        P[1]: ("near_duplicate", P[2]),
        P[5]: ("exact_duplicate", P[2]),
        P[7]: ("near_duplicate", P[6]),
    }


def test_merged_accumulators_equal_one_pass():
    links = [("near", P[i], P[i + 1], 30, 30) for i in range(0, 8, 2)] + [
        ("near", P[1], P[2], 30, 30),
        ("exact", P[4], P[9], 30, 30),
    ]
    fn = dedup.ConnectedComponents()
    parts = []
    for chunk in (links[:2], links[2:4], links[4:]):
        acc = fn.create_accumulator()
        for link in chunk:
            acc = fn.add_input(acc, link)
        parts.append(acc)
    assert fn.extract_output(fn.merge_accumulators(parts)) == components(links)
