import pytest

from transforms.select.config import FragmentConfig
from transforms.select.fragment import TOO_LONG, TOO_SHORT, fragment_document, runs

CFG = FragmentConfig(min_chars=30, max_chars=200, paragraph_weights=(0.4, 0.3, 0.2, 0.1))


def test_runs():
    assert runs([0, 1, 2, 5, 6, 9]) == [[0, 1, 2], [5, 6], [9]]
    assert runs([]) == []


@pytest.mark.parametrize("key", [f"doc{i}" for i in range(30)])
def test_fragments_cover_every_paragraph_once_and_in_order(key):
    paragraphs = {i: f"paragraph number {i} " * (1 + i % 4) for i in range(12) if i not in (4, 8)}
    frags = fragment_document(paragraphs, CFG, key)
    covered = [i for f in frags for i in range(f.first, f.last + 1)]
    assert covered == sorted(paragraphs)
    for f in frags:
        assert all(i in paragraphs for i in range(f.first, f.last + 1))  # never across a gap
        assert f.text == "\n".join(paragraphs[i] for i in range(f.first, f.last + 1))
        if f.reject_reason is None:
            assert CFG.min_chars <= len(f.text) <= CFG.max_chars


def test_lengths_vary_and_draws_are_reproducible():
    paragraphs = {i: "x" * 40 for i in range(200)}
    sizes = [len(f.texts) for f in fragment_document(paragraphs, CFG, "d")]
    assert len(set(sizes)) >= 3
    assert sizes == [len(f.texts) for f in fragment_document(paragraphs, CFG, "d")]
    assert sizes != [len(f.texts) for f in fragment_document(paragraphs, CFG, "e")]


def test_too_long_and_too_short():
    frags = fragment_document({0: "y" * 500, 2: "short"}, CFG, "d")
    assert [(f.first, f.reject_reason) for f in frags] == [(0, TOO_LONG), (2, TOO_SHORT)]


def test_short_paragraphs_grow_into_a_fragment():
    frags = fragment_document({0: "a" * 10, 1: "b" * 10, 2: "c" * 10}, CFG, "d")
    assert [(f.first, f.last, f.reject_reason) for f in frags] == [(0, 2, None)]
