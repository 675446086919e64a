import pytest
import regex

from transforms import languages
from transforms.select.filters import _script_pattern


def test_registry_covers_cc100():
    # CC-100 has 116 corpora (100 languages plus romanised, Zawgyi and Traditional variants)
    assert len(languages.LANGUAGES) >= 115
    cc100 = [lang.cc100 for lang in languages.LANGUAGES.values()]
    assert len(cc100) == len(set(cc100))
    assert {"te", "hi", "ja", "es", "zh-Hans", "hi_rom", "my_zaw"} <= set(cc100)


@pytest.mark.parametrize("lang", languages.LANGUAGES.values(), ids=lambda lang: lang.code)
def test_entries_are_well_formed(lang):
    assert languages.get(lang.code) is lang
    if lang.nllb:
        assert regex.fullmatch(r"[a-z]{3}_[A-Z][a-z]{3}", lang.nllb)
    assert _script_pattern(lang.scripts).pattern  # every script name is known to `regex`
    assert lang.name


def test_parse_langs_keeps_order_and_drops_repeats():
    assert [lang.code for lang in languages.parse_langs("tel, hin,tel")] == ["tel", "hin"]


@pytest.mark.parametrize("bad", ["xx", "../x", "te", "tel/..", "TEL", "hin_rom", ""])
def test_unknown_codes_are_clear_errors(bad):
    with pytest.raises(languages.UnknownLanguageError) as err:
        languages.parse_langs(bad)
    assert "tel" in str(err.value)  # the message lists the supported codes (or asks for some)
