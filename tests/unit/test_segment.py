import pytest

from transforms.models import segment


def words(text: str) -> int:
    return len(text.split())


def test_sentences_per_language():
    assert segment.sentences("Hola. ¿Qué tal? Bien.", "es") == ["Hola.", "¿Qué tal?", "Bien."]
    assert len(segment.sentences("すべて人は自由である。何人も奪われない。", "ja")) == 2
    assert len(segment.sentences("प्रत्येक व्यक्ति को अधिकार है । शिक्षा निःशुल्क होगी ।", "hi")) == 2


def test_short_sentences_are_left_alone():
    assert segment.cap("uno dos tres", words, 5) == ["uno dos tres"]


def test_long_sentences_cut_at_clause_marks_before_spaces():
    text = "uno dos tres, cuatro cinco seis, siete ocho nueve diez"
    pieces = segment.cap(text, words, 4)
    assert pieces == ["uno dos tres,", "cuatro cinco seis,", "siete ocho nueve diez"]
    assert " ".join(pieces) == text  # nothing lost


def test_cuts_at_spaces_when_no_clause_marks():
    text = " ".join(str(i) for i in range(10))
    pieces = segment.cap(text, words, 3)
    assert all(words(p) <= 3 for p in pieces) and " ".join(pieces) == text


def test_uncuttable_piece_is_an_error_not_a_truncation():
    with pytest.raises(segment.SegmentTooLong):
        segment.cap("x" * 50, len, 10)


def test_segments_keep_paragraphs():
    out = segment.segments("Uno. Dos.\nTres.", "es", words, 10)
    assert out == [["Uno.", "Dos."], ["Tres."]]
