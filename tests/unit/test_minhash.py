import numpy as np
import pytest
from datasketch import MinHash

from transforms.select.minhash import MinHasher, normalize

A = "Toda persona tiene derecho a la libertad de pensamiento, de conciencia y de religión."
B = "Toda persona tiene derecho a la libertad de pensamiento, de conciencia y religión."
C = "Nadie estará sometido a esclavitud ni a servidumbre; la esclavitud está prohibida."


def shingles(text: str, n: int, words: bool) -> set[str]:
    t = normalize(text)
    units = t.split() if words else list(t)
    sep = " " if words else ""
    return {sep.join(units[i:i + n]) for i in range(max(1, len(units) - n + 1))}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b)


@pytest.mark.parametrize("words, n", [(False, 5), (True, 2), (False, 3)])
def test_estimates_match_true_jaccard(words, n):
    hasher = MinHasher(num_perm=512, ngram=n, words=words, seed=3)
    sig = hasher.signatures([A, B, C])
    for x, y in ((0, 1), (0, 2), (1, 2)):
        true = jaccard(shingles([A, B, C][x], n, words), shingles([A, B, C][y], n, words))
        estimate = float(np.mean(sig[x] == sig[y]))
        assert abs(estimate - true) < 0.08, (x, y, estimate, true)


def test_agrees_with_datasketch_on_the_same_shingles():
    ours = MinHasher(num_perm=256, ngram=5).signatures([A, B])
    estimate = float(np.mean(ours[0] == ours[1]))
    ds = []
    for text in (A, B):
        m = MinHash(num_perm=256, seed=1)
        m.update_batch([s.encode() for s in shingles(text, 5, False)])
        ds.append(m)
    assert abs(estimate - ds[0].jaccard(ds[1])) < 0.1


def test_deterministic_and_independent_of_batch():
    one = MinHasher(128, 5, seed=7)
    two = MinHasher(128, 5, seed=7)
    batch = one.signatures([A, B, C])
    assert np.array_equal(batch[1], two.signatures([B])[0])
    assert np.array_equal(batch, two.signatures([A, B, C]))
    assert not np.array_equal(batch, MinHasher(128, 5, seed=8).signatures([A, B, C]))


def test_shingles_do_not_cross_texts():
    hasher = MinHasher(128, 5)
    alone = hasher.signatures(["abcdefgh"])[0]
    assert np.array_equal(hasher.signatures(["xyz", "abcdefgh", "ijk"])[1], alone)


def test_short_empty_and_non_latin_texts():
    hasher = MinHasher(64, 5, words=True)
    sig = hasher.signatures(["", "!!", "ab", "ab", "すべての人間は", "ప్రతి వ్యక్తికిని"])
    assert sig.shape == (6, 64) and sig.dtype == np.uint32
    assert np.array_equal(sig[2], sig[3])
    assert not np.array_equal(sig[4], sig[5])


def test_normalize_ignores_case_punctuation_and_spacing():
    assert normalize("Hola,   MUNDO!") == normalize("hola mundo") == "hola mundo"
    assert normalize("ＡＢＣ") == "abc"  # NFKC


# Issue 12: a paragraph of many MB must not build a permutations x shingles block.
def _long_text(n_words: int) -> str:
    rng = np.random.default_rng(0)
    vocab = ["derecho", "persona", "libertad", "educación", "trabajo", "ley", "igual", "vida"]
    return " ".join(vocab[i] for i in rng.integers(0, len(vocab), n_words))


@pytest.mark.parametrize("words, n", [(False, 5), (True, 2), (True, 3)])
def test_windows_give_the_signature_of_the_whole_text(monkeypatch, words, n):
    import transforms.select.minhash as minhash

    text = _long_text(3000)  # ~25,000 characters
    hasher = MinHasher(128, n, words=words)
    whole = hasher.signatures([A, text, B])
    monkeypatch.setattr(minhash, "_WINDOW_CHARS", 1000)
    monkeypatch.setattr(minhash, "_GROUP_CHARS", 5000)
    assert len(hasher._windows(normalize(text))) > 10
    assert np.array_equal(hasher.signatures([A, text, B]), whole)


def test_memory_is_bounded_for_a_long_paragraph():
    import tracemalloc

    text = _long_text(250_000)  # ~2 MB: 2 M shingles x 128 permutations took 2 GB before
    tracemalloc.start()
    MinHasher(128, 5).signatures([text])
    MinHasher(128, 2, words=True).signatures([text])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 300 * 2**20, peak  # the text itself and a few windows
