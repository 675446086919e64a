import random
from dataclasses import replace

import numpy as np
import pytest

from transforms.select import dedup
from transforms.select.config import DedupConfig
from transforms.select.minhash import MinHasher

P = [("s", "f", d, 0) for d in range(10)]  # positions, in order
CFG = DedupConfig()
BANDS, ROWS, MATCHES = dedup.bands_of(CFG)
PARAMS = dedup.DedupParams.of(CFG).sharded(1)


def entries_of(texts, per_batch=500):
    """The bucket entries the select stage emits for ``texts`` (document i, paragraph 0):
    ``(exact, band)`` per batch of ``per_batch`` texts."""
    hasher = MinHasher(CFG.num_perm, CFG.char_ngram, False, CFG.seed)
    kept = [(("s", "f", i, 0), text) for i, text in enumerate(texts)]
    return [
        dedup.bucket_entries(kept[start:start + per_batch], hasher, PARAMS)
        for start in range(0, len(kept), per_batch)
    ]


def table(entries, bands=3):
    """Hand-made ``(key, value)`` entries as an ``Entries`` table: exact ``(key, (position,
    length))`` or band ``(key, (position, text key, length, fingerprints))``."""
    files = tuple(sorted({value[0][:2] for _, value in entries}))
    band = any(len(value) == 4 for _, value in entries)
    dtype = [("key", "S8"), ("file", "<i4"), ("doc", "<i8"), ("index", "<i4"), ("length", "<i8")]
    dtype += [("text", "S13"), ("fp", "<u4", (bands,))] if band else []
    rows = np.zeros(len(entries), dtype)
    for row, (key, value) in zip(rows, entries):
        (source, file, doc, i), *rest = value
        row["key"], row["file"], row["doc"], row["index"] = key, files.index((source, file)), doc, i
        if band:
            row["text"], row["length"], row["fp"] = rest[0], rest[1], np.frombuffer(rest[2], np.uint32)
        else:
            row["length"] = rest[0]
    return dedup.Entries(files, rows)


def batch(entries):
    """Hand-made entries as ``bucket_facts`` gets a batch: (exact table, band table)."""
    return table([e for e in entries if e[0][:1] == b"x"]), table([e for e in entries if e[0][:1] == b"b"])


_rng = random.Random(42)
LETTERS = "abcdefghijklmnopqrstuvwxyzáéíóúñ"
WORDS = ["".join(_rng.choices(LETTERS, k=_rng.randint(2, 9))) for _ in range(2000)]


def templated(n_templates, copies, seed=0):
    """``copies`` variants of each of ``n_templates`` sentences (a word swapped, a number
    inserted: templated text as shops and forums write it), shuffled."""
    rng = random.Random(seed)
    templates = [" ".join(rng.choices(WORDS, k=30)) for _ in range(n_templates)]
    texts = []
    for t in templates:
        for _ in range(copies):
            units = t.split()
            units[rng.randrange(len(units))] = rng.choice(WORDS)
            units.insert(rng.randrange(len(units)), str(rng.randrange(1000)))
            texts.append(" ".join(units))
    rng.shuffle(texts)
    return texts


def test_lsh_params_are_steep_around_the_threshold():
    bands, rows, matches = dedup.lsh_params(0.55, 128)
    assert bands * rows <= 128 and rows >= dedup.MIN_ROWS
    p = lambda s: float(dedup.collision_probability(s, bands, rows, matches))
    assert p(0.8) > 0.99 and p(0.3) < 0.01 and p(0.4) < 0.05


def test_bands_given_in_config_are_used():
    assert dedup.bands_of(DedupConfig(num_perm=128, bands=16, min_band_matches=2)) == (16, 8, 2)
    with pytest.raises(ValueError):
        dedup.bands_of(DedupConfig(num_perm=128, bands=200))


def test_band_keys_differ_by_band_and_value():
    sig = np.arange(24, dtype=np.uint32).reshape(2, 12)
    keys = dedup.band_keys(sig, 3, 4)
    assert keys.shape == (2, 3) and keys.dtype.itemsize == dedup.BAND_KEY_WIDTH
    assert len(set(keys.ravel().tolist())) == 6
    same = sig.copy()
    same[1, :4] = sig[0, :4]  # the first band's rows alike: the first band's key alike
    assert (dedup.band_keys(same, 3, 4)[1] == keys[0]).tolist() == [True, False, False]
    shifted = np.roll(sig[:1], -4, axis=1)  # band 0 of ``shifted`` holds band 1's values
    assert dedup.band_keys(shifted, 3, 4)[0, 0] != keys[0, 1]  # same values, other band: other key
    rng = np.random.default_rng(0)  # and the keys spread over the key shards
    spread = dedup.key_shards(np.array(dedup.band_keys(rng.integers(0, 2**32, (4000, 20), np.uint32), 4, 5).ravel(),
                                       [("key", "S8")]), 16)
    assert np.bincount(spread, minlength=16).min() > 800


def test_exact_key_normalises():
    assert dedup.exact_key("Hola, mundo.") == dedup.exact_key("hola mundo")
    assert dedup.exact_key("hola mundo") != dedup.exact_key("hola mundos")


def test_band_fingerprints_count_the_bands_two_signatures_share():
    a = np.arange(20, dtype=np.uint32).reshape(1, 20)
    b = a.copy()
    b[0, [1, 7, 12, 19]] += 1  # a row of each of the 4 bands of 5 rows
    fa, fb = dedup.band_fingerprints(np.vstack([a, b]), 4, 5)
    assert fa.dtype == np.uint32 and fa.shape == (4,)
    assert (fa == fb).sum() == 0
    b[0, [1, 7]] = a[0, [1, 7]]
    fa, fb = dedup.band_fingerprints(np.vstack([a, b]), 4, 5)
    assert (fa == fb).tolist() == [True, True, False, False]


def fp(shared: int) -> bytes:
    """The window fingerprints (3) of a band entry whose text shares ``shared`` bands with that
    of ``fp(4)``'s entry in the same bucket: the bucket's band and ``shared - 1`` of the window's
    (the rest differ from every other ``fp``'s)."""
    return np.array([i if i < shared - 1 else 100 * (shared + 1) + i for i in range(3)], np.uint32).tobytes()


def test_bucket_members_link_to_the_first_when_they_share_enough_bands():
    bucket = [
        (b"b1", (P[3], b"t3", 30, fp(1))),  # one band in common with the first: no link
        (b"b1", (P[0], b"t0", 40, fp(4))),  # the first: earliest position
        (b"b1", (P[2], b"t2", 35, fp(2))),  # two bands: linked
        (b"b1", (P[4], b"t0", 40, fp(4))),  # the first's exact text: its exact bucket links it
        (b"b9", (P[5], b"t5", 20, fp(4))),  # alone in its bucket
    ]
    facts = list(dedup.bucket_facts([batch(bucket[:2]), batch(bucket[2:])], 2, heads=1))
    assert facts == [(P[0], dedup.HEAD, None, 1, 40), (P[2], dedup.LINK, P[0], 1, 35)]


def test_a_member_links_to_the_earliest_head_it_matches():
    bucket = [
        (b"b1", (P[0], b"t0", 40, fp(0))),
        (b"b1", (P[1], b"t1", 40, fp(4))),
        (b"b1", (P[2], b"t2", 40, fp(3))),  # 3 bands in common with P[1], none with P[0]
    ]
    assert (P[2], dedup.LINK, P[1], 1, 40) not in list(dedup.bucket_facts([batch(bucket)], 2, heads=1))
    assert (P[2], dedup.LINK, P[1], 1, 40) in list(dedup.bucket_facts([batch(bucket)], 2, heads=2))


def test_exact_copies_link_to_the_first_copy_with_the_copy_count():
    bucket = [(b"x1", (P[i], 25)) for i in (4, 1, 7)]
    assert list(dedup.bucket_facts([batch(bucket)], 2)) == [
        (P[1], dedup.HEAD, None, 3, 25),  # the first copy: 3 copies of its text
        (P[4], dedup.COPY, P[1], 0, 25),
        (P[7], dedup.COPY, P[1], 0, 25),
    ]


def test_a_first_copy_gets_its_copy_count_whichever_bucket_comes_first():
    band = [(b"b1", (P[0], b"t0", 40, fp(4))), (b"b1", (P[1], b"t1", 40, fp(3)))]
    exact = [(b"x0", (P[0], 40)), (b"x0", (P[2], 40))]
    facts = list(dedup.bucket_facts([batch(band), batch(exact)], 2))
    assert (P[0], dedup.HEAD, None, 2, 40) in facts and (P[0], dedup.HEAD, None, 1, 40) in facts


@pytest.mark.parametrize("bands", [7, 16, 25])
def test_a_half_window_sees_every_pair_of_bands_in_one_of_their_buckets(bands):
    """Two shared bands are counted in one of their two buckets, so a band entry carries half
    the fingerprints when a link needs two; three need them all."""
    width = dedup.fingerprint_window(bands, 2)
    window = dedup.window_fingerprints(np.arange(bands, dtype=np.uint32)[None, :], width)[0]
    assert width < bands - 1 and all(b not in window[b] for b in range(bands))
    for b1 in range(bands):
        for b2 in range(b1 + 1, bands):
            assert b2 in window[b1] or b1 in window[b2]
    assert dedup.fingerprint_window(bands, 1) == 0 and dedup.fingerprint_window(bands, 3) == bands - 1


def test_every_band_link_shares_enough_bands():
    """A link is never made on fewer shared bands than ``min_band_matches``: counted over the
    fingerprint window, checked here on whole signatures."""
    texts = templated(6, 40, seed=9) + templated(60, 2, seed=10)
    hasher = MinHasher(CFG.num_perm, CFG.char_ngram, False, CFG.seed)
    keys = dedup.band_keys(hasher.signatures(texts), BANDS, ROWS)
    links = [(f.node, f.parent) for f in dedup.bucket_facts(entries_of(texts), MATCHES) if f.kind == dedup.LINK]
    assert len(links) > 6 * 30
    assert all((keys[node[2]] == keys[up[2]]).sum() >= MATCHES for node, up in links)


def test_facts_grow_with_entries_not_with_duplication():
    """Every entry gives at most a link and a marker: no pairs, however large the buckets."""
    for copies in (5, 200):
        entries = entries_of(templated(1000 // copies, copies))
        facts = list(dedup.bucket_facts(entries, MATCHES))
        assert len(facts) <= 2 * sum(len(exact) + len(band) for exact, band in entries)


def test_components_keep_the_most_copied_then_shortest_then_earliest():
    a = "Toda persona tiene derecho a la libertad de pensamiento, de conciencia y de religión."
    b = "Toda persona tiene derecho a la libertad de pensamiento, de conciencia y religión."
    c = "Toda persona tiene derecho a la libertad de pensamiento, de conciencia y de religión hoy."
    d = "Nadie estará sometido a esclavitud ni a servidumbre; la esclavitud está prohibida."
    e = "Nadie estará sometido a esclavitud ni a servidumbre: la esclavitud está prohibida hoy."
    out = dedup.find_duplicates(entries_of([a, c, b, e, d, b]), PARAMS)
    assert out == {
        ("s", "f", 0, 0): ("near_duplicate", ("s", "f", 2, 0)),  # b has two copies: it is kept
        ("s", "f", 1, 0): ("near_duplicate", ("s", "f", 2, 0)),
        ("s", "f", 5, 0): ("exact_duplicate", ("s", "f", 2, 0)),
        ("s", "f", 3, 0): ("near_duplicate", ("s", "f", 4, 0)),  # one copy each: the shorter
    }


def test_shards_do_not_change_the_result():
    entries = entries_of(templated(6, 60, seed=1) + templated(40, 2, seed=2))
    one = dedup.find_duplicates(entries, PARAMS)
    assert len(one) > 6 * 50
    for shards in (3, 16, 101):
        assert dedup.find_duplicates(entries, PARAMS.sharded(shards)) == one


def test_a_fact_seen_again_changes_no_component():
    facts = list(dedup.bucket_facts(entries_of(templated(5, 30, seed=5)), MATCHES))
    once = [sorted(rows, key=repr) for rows in dedup.local_components(facts)]
    assert [sorted(rows, key=repr) for rows in dedup.local_components(facts * 3)] == once
    for grouped in (dedup.by_node_shard(facts, 7), dedup.facts_by_node_shard(entries_of(templated(5, 30, seed=5)),
                                                                            MATCHES, 4, 7)):
        assert sorted((f for rows in grouped.values() for f in rows), key=repr) == sorted(facts, key=repr)
        assert all(dedup.node_shard(f[0], 7) == s for s, rows in grouped.items() for f in rows)
        assert len(grouped) == 7


def test_one_paragraph_kept_per_template():
    texts = templated(8, 40, seed=3)
    out = dedup.find_duplicates(entries_of(texts), PARAMS.sharded(7))
    assert sum(("s", "f", i, 0) not in out for i in range(len(texts))) == 8
    assert all(kept not in out for _, kept in out.values())  # each points at a kept paragraph


def test_entries_of_one_key_meet_in_one_shard():
    (exact, band), = entries_of(templated(3, 20, seed=4))
    parts = list(dedup.by_key_shard(exact, band, 16))
    assert len({s for s, _ in parts}) == len(parts) > 1
    for kind, whole in enumerate((exact, band)):
        rows = [part[kind].rows for _, part in parts]
        assert sum(map(len, rows)) == len(whole)
        keys = [set(r["key"].tolist()) for r in rows]
        assert sum(map(len, keys)) == len(set(whole.rows["key"].tolist()))  # no key in two shards


def test_roots_union_joins_roots_and_holds_at_most_its_bound():
    links = [(P[0], P[3]), (P[5], P[3]), (P[1], P[2])]
    assert dedup.roots_union(links, 5) == {P[0]: P[0], P[3]: P[0], P[5]: P[0], P[1]: P[1], P[2]: P[1]}
    with pytest.raises(dedup.TooManyRoots, match="max_union_roots"):
        dedup.roots_union(links, 4, "spa")


def test_no_more_roots_to_join_than_shards_disagree_on():
    """The roots union holds only what per-shard union-find left: far fewer roots than
    paragraphs, whatever the cluster size (what the bound in config is about)."""
    for copies in (10, 400):
        texts = templated(800 // copies, copies, seed=8)
        dups = dedup.find_duplicates(entries_of(texts), replace(PARAMS.sharded(8), max_union_roots=800 // 8))
        assert len(dups) > 800 - 2 * (800 // copies)


def test_params_name_what_the_config_resolves_to():
    cfg = DedupConfig(num_perm=128, bands=16, min_band_matches=2, bucket_heads=3, shards=8, component_shards=4,
                      max_union_roots=99, near=False)
    params = dedup.DedupParams.of(cfg)
    assert (params.bands, params.rows, params.min_matches, params.heads) == (16, 8, 2, 3)
    assert (params.key_shards, params.component_shards, params.max_union_roots) == (8, 4, 99)
    assert params.exact and not params.near
    assert (params.sharded(1).key_shards, params.sharded(1).component_shards, params.sharded(1).heads) == (1, 1, 3)


def test_each_fact_kind_says_what_its_fields_hold():
    texts = templated(5, 20, seed=11)
    facts = list(dedup.bucket_facts(entries_of(texts + texts[:10]), MATCHES))
    assert {f.kind for f in facts} == {dedup.HEAD, dedup.COPY, dedup.LINK}
    for f in facts:
        assert (f.parent is None) == (f.kind == dedup.HEAD)
        assert (f.copies == 0) == (f.kind == dedup.COPY)
        if f.kind == dedup.COPY:  # the later copies of texts[:10]: their first copy is the earlier one
            assert f.parent[2] == f.node[2] - len(texts)


def test_union_find_roots_a_set_at_its_smallest_node():
    parent = {}
    for a, b in [(5, 3), (9, 7), (3, 7), (2, 9)]:
        dedup.union(parent, a, b)
    assert {n: dedup.find(parent, n) for n in (2, 3, 5, 7, 9)} == dict.fromkeys((2, 3, 5, 7, 9), 2)
    assert dedup.find(parent, 4) == 4
