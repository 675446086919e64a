import dataclasses
import time

import pytest

from pipeline.config import load
from transforms.languages import get
from transforms.select import filters
from transforms.select.config import FilterConfig

CFG = load("demo").select.filters

# Article 1 of the Universal Declaration of Human Rights, or similar natural prose, in many
# scripts: none may be dropped by a heuristic filter.
GENUINE = {
    "tel": "ప్రతిపత్తిస్వత్వముల విషయమున మానవులెల్లరును జన్మతః స్వతంత్రులును సమానులును నగుదురు.",
    "hin": "सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता और समानता प्राप्त है।",
    "jpn": "すべての人間は、生まれながらにして自由であり、かつ、尊厳と権利とについて平等である。",
    "spa": "Todos los seres humanos nacen libres e iguales en dignidad y derechos y, dotados como están de razón.",
    "rus": "Все люди рождаются свободными и равными в своем достоинстве и правах.",
    "ara": "يولد جميع الناس أحرارًا متساوين في الكرامة والحقوق.",
    "kor": "모든 인간은 태어날 때부터 자유로우며 그 존엄과 권리에 있어 동등하다.",
    "tha": "มนุษย์ทั้งหลายเกิดมามีอิสระและเสมอภาคกันในเกียรติศักดิ์และสิทธิ",
    "ell": "Όλοι οι άνθρωποι γεννιούνται ελεύθεροι και ίσοι στην αξιοπρέπεια και τα δικαιώματα.",
    "deu": "Alle Menschen sind frei und gleich an Würde und Rechten geboren.",
    "zho": "人人生而自由,在尊严和权利上一律平等。他们赋有理性和良心。",
    "tam": "மனிதப் பிறவியினர் சகலரும் சுதந்திரமாகவே பிறக்கின்றனர்; அவர்கள் மதிப்பிலும், உரிமைகளிலும் சமமானவர்கள்.",
    "heb": "כל בני האדם נולדו בני חורין ושווים בערכם ובזכויותיהם.",
}


@pytest.mark.parametrize("code", GENUINE)
def test_natural_prose_passes_in_every_script(code):
    assert filters.paragraph_reject_reason(GENUINE[code], get(code), CFG) is None


@pytest.mark.parametrize(
    "text, reason",
    [
        ("Voir la suite sur http://example.com/page/1 pour les détails.", filters.CONTAINS_URL),
        ("Escríbanos a ventas@tienda.es para más información hoy mismo.", filters.CONTAINS_URL),
        ("Copyright 2014 Mi Sitio. All Rights Reserved.", filters.BOILERPLATE),
        ("jajajajajajajajajajajajajajaja que risa me dio todo esto", filters.REPEATED_CHARS),
        ("¡¡¡¡¡¡¡¡ Oferta increíble para todos !!!!!!!!", filters.REPEATED_CHARS),
        ("★ precio ★ oferta ★ ### envío | gratis | <<ya>> ★", filters.TOO_MANY_SYMBOLS),
        ("Teléfono 555 123 4567 fax 555 765 4321 código 28001", filters.TOO_MANY_DIGITS),
        ("ENVÍO GRATIS EN TODOS LOS PEDIDOS COMPRE AHORA", filters.TOO_MANY_CAPITALS),
        ("Это предложение написано по-русски, а не по-испански.", filters.WRONG_SCRIPT),
        ("Un texto con un byte roto \ufffd en medio de la frase larga.", filters.INVALID_UTF8),
    ],
)
def test_each_check_names_its_reason(text, reason):
    assert filters.paragraph_reject_reason(text, get("spa"), CFG) == reason


def test_script_check_is_per_language():
    hindi = GENUINE["hin"]
    assert filters.paragraph_reject_reason(hindi, get("tel"), CFG) == filters.WRONG_SCRIPT
    assert filters.paragraph_reject_reason(hindi, get("mar"), CFG) is None  # same script: LID's job


def test_none_disables_a_check():
    loose = FilterConfig(max_urls=None, max_upper_ratio=None)
    assert filters.paragraph_reject_reason("VISIT WWW.EXAMPLE.COM NOW PLEASE", get("eng"), loose) is None


def test_capitals_need_enough_cased_letters():
    assert filters.paragraph_reject_reason("La NASA y la ONU firmaron.", get("spa"), CFG) is None


def test_repeated_paragraphs_marks_every_copy():
    assert filters.repeated_paragraphs(["a", "b", "a ", "c"]) == {0, 2}


def test_script_ratio():
    assert filters.script_ratio("abc", ("Latin",)) == 1.0
    assert filters.script_ratio("ab где", ("Latin",)) == pytest.approx(0.4)
    assert filters.script_ratio("123 !!", ("Latin",)) == 0.0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("jajajajajajajaja", True),
        ("Qué bueno jajaja", False),
        ("compra ya compra ya compra ya compra ya compra ya compra ya y ahorra", True),
        ("compra ya compra ya compra ya", False),
        ("すごいわらわらわらわらわらわらわら", True),
        ("Todo bien...", False),
        ("Todo bien......", True),
    ],
)
def test_repeated_units(text, expected):
    assert filters.has_repeated_unit(text, 5) is expected


@pytest.mark.parametrize(
    "text, code",
    [
        ("Inicio | Nosotros | Servicios | Contacto", "spa"),
        ("होम | समाचार | खेल | क्रिकेट", "hin"),
        ("• Inicio • Blog • Tienda", "spa"),
        ("© 2019 Diario Local. Todos los derechos reservados.", "spa"),
        ("Copyright © 2020 समाचार. सर्वाधिकार सुरक्षित", "hin"),
    ],
)
def test_menus_and_copyright_lines_are_boilerplate(text, code):
    assert filters.paragraph_reject_reason(text, get(code), CFG) == filters.BOILERPLATE


def test_guillemets_are_quotes_not_menus():
    text = "Dijo «no» y luego «sí», y al final «quizá» con una sonrisa en la cara."
    assert filters.paragraph_reject_reason(text, get("spa"), CFG) is None


# Issue 12: input hardening. Texts built to make a backtracking filter quadratic: long runs of
# the characters its patterns repeat over (an 80,000-character line took 48 s before).
ADVERSARIAL = {
    "letters": "a" * 200_000,
    "hyphens": "a-" * 100_000,
    "dots": "a." * 100_000,
    "address-like": "a+b." * 50_000,
    "at-signs": "ab@" * 66_000,
    "words": "palabra " * 25_000,
    "devanagari": "क" * 200_000,
}


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_every_filter_is_linear_in_the_text_length(name):
    text = ADVERSARIAL[name]
    start = time.perf_counter()
    filters.paragraph_reject_reason(text, get("spa"), FilterConfig(boilerplate_phrases=("x y z",)))
    assert time.perf_counter() - start < 2.0  # ~0.1 s measured; quadratic would be minutes


def test_url_check_still_finds_addresses_and_domains():
    for text in ("escríbeme: ana.lopez+web@correo-uno.es ya", "visita tienda-online.com hoy",
                 "en sub.dominio.net/pagina"):
        assert filters.paragraph_reject_reason(text, get("spa"), CFG) == filters.CONTAINS_URL


def test_a_six_character_unit_repeated_a_million_times_is_repeated():
    assert filters.has_repeated_unit("abcdef" * 1_000_000, 5)
    assert filters.has_repeated_unit("texto " + "ありがとう！" * 6, 5)
    assert not filters.has_repeated_unit("texto " + "ありがとう！" * 5, 5)


@pytest.mark.slow
def test_repeated_words_in_a_text_of_a_million_distinct_words():
    # one character per distinct word ran past the last code point (ValueError) before
    distinct = [f"w{i}" for i in range(1_000_000) if i % 111_111]  # no "w999999": six 9s
    words = distinct + ["otra"] * 3 + ["vez", "otra"] * 3
    assert not filters.has_repeated_unit(" ".join(words), 5)


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\x9f"])
def test_control_characters_are_rejected(char):
    text = f"Todos los seres humanos nacen libres{char} e iguales en dignidad y derechos."
    assert filters.paragraph_reject_reason(text, get("spa"), CFG) == filters.CONTROL_CHARS


def test_tab_is_not_a_control_character_to_reject():
    text = "Todos los seres humanos nacen libres\te iguales en dignidad y derechos."
    assert filters.paragraph_reject_reason(text, get("spa"), CFG) is None


SPECIAL = ["<|eot_id|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "[INST]", "[/INST]",
           "</s>", "<s>", "<<SYS>>", "<start_of_turn>", "<|reserved_special_token_7|>",
           "<｜end▁of▁sentence｜>"]


@pytest.mark.parametrize("token", SPECIAL)
def test_chat_template_special_tokens_are_rejected(token):
    text = f"Todos los seres humanos nacen libres {token} e iguales en dignidad y derechos."
    assert filters.paragraph_reject_reason(text, get("spa"), CFG) == filters.SPECIAL_TOKENS


@pytest.mark.parametrize("token", SPECIAL)
def test_special_tokens_escaped_by_config_are_kept_and_broken_up(token):
    cfg = FilterConfig(escape_special_tokens=True)
    text = f"Todos los seres humanos nacen libres {token} e iguales en dignidad y derechos."
    assert filters.paragraph_reject_reason(text, get("spa"), cfg) is None
    escaped = filters.escape_special_tokens(text, cfg)
    assert token not in escaped and escaped.replace(filters.ZERO_WIDTH_SPACE, "") == text
    assert filters.escape_special_tokens(text, CFG) == text  # only when configured


def test_brackets_and_angles_in_prose_are_not_special_tokens():
    text = "Si a < b y b > c, entonces [1] dice que <b> no es |x| en la sección [INSTRUCCIONES]."
    assert filters.paragraph_reject_reason(text, get("spa"), FilterConfig(max_symbol_ratio=None)) is None


# Filters as units (``filters.FILTERS``): per filter, a Spanish paragraph that fails it.
SPA = get("spa")
FAILS = {
    "invalid_utf8": "Un texto con un byte roto \ufffd en medio de la frase larga.",
    "control_chars": "Todos los seres humanos nacen libres\x07 e iguales en dignidad y derechos.",
    "special_tokens": "Todos los seres humanos nacen libres <|eot_id|> e iguales en dignidad y derechos.",
    "contains_url": "Voir la suite sur http://example.com/page/1 pour les détails.",
    "boilerplate_phrases": "Copyright 2014 Mi Sitio. All Rights Reserved.",
    "menu_separators": "Inicio | Nosotros | Servicios | Contacto",
    "repeated_chars": "jajajajajajajajajajajajajajaja que risa me dio todo esto",
    "too_many_symbols": "★ precio ★ oferta ★ ### envío | gratis | <<ya>> ★",
    "too_many_digits": "Teléfono 555 123 4567 fax 555 765 4321 código 28001",
    "too_many_capitals": "ENVÍO GRATIS EN TODOS LOS PEDIDOS COMPRE AHORA",
    "wrong_script": "Это предложение написано по-русски, а не по-испански.",
}
# Today's order: the first failing check wins.
ORDER = ["invalid_utf8", "control_chars", "special_tokens", "contains_url", "boilerplate_phrases",
         "menu_separators", "repeated_chars", "too_many_symbols", "too_many_digits",
         "too_many_capitals", "wrong_script"]


def _named(name: str) -> filters.ParagraphFilter:
    return next(f for f in filters.FILTERS if f.name == name)


def test_filters_run_in_the_order_of_before():
    assert [f.name for f in filters.FILTERS] == ORDER
    assert [f.reason for f in filters.FILTERS] == [
        filters.INVALID_UTF8, filters.CONTROL_CHARS, filters.SPECIAL_TOKENS, filters.CONTAINS_URL,
        filters.BOILERPLATE, filters.BOILERPLATE, filters.REPEATED_CHARS, filters.TOO_MANY_SYMBOLS,
        filters.TOO_MANY_DIGITS, filters.TOO_MANY_CAPITALS, filters.WRONG_SCRIPT]
    assert set(FAILS) == set(ORDER)  # a failing text for every filter
    assert all(hasattr(CFG, name) for f in filters.FILTERS for name in f.fields)


@pytest.mark.parametrize("f", filters.FILTERS, ids=lambda f: f.name)
def test_each_filter_rejects_a_failing_text_with_its_reason(f):
    text = FAILS[f.name]
    stats = filters.batch_text_stats([text], SPA.scripts, CFG.max_repeats)[0]
    assert f.enabled(CFG) and f.check(text, stats, CFG)
    assert filters.paragraph_reject_reason(text, SPA, CFG) == f.reason
    assert filters.paragraph_reject_reason(GENUINE["spa"], SPA, CFG) is None


@pytest.mark.parametrize("f", [f for f in filters.FILTERS if f.fields], ids=lambda f: f.name)
def test_each_filter_is_off_when_its_threshold_is_none(f):
    off = dataclasses.replace(CFG, **dict.fromkeys(f.fields))
    assert not f.enabled(off) and f not in filters.enabled_filters(off)
    assert filters.paragraph_reject_reason(FAILS[f.name], SPA, off) is None  # it failed only this one


def test_filters_without_thresholds_are_always_on_and_special_tokens_off_when_escaped():
    none = FilterConfig(**{name: None for f in filters.FILTERS for name in f.fields})
    assert [f.name for f in filters.enabled_filters(none)] == ["invalid_utf8", "control_chars"]
    assert not _named("special_tokens").enabled(FilterConfig(escape_special_tokens=True))
    assert not _named("special_tokens").enabled(FilterConfig(special_tokens=""))
    assert not _named("boilerplate_phrases").enabled(FilterConfig(boilerplate_phrases=()))
    assert _named("contains_url").enabled(FilterConfig(max_urls=0))  # 0 is a threshold, not off


@pytest.mark.parametrize(
    "text, failed",
    [
        ("Un texto roto \ufffd con un enlace http://example.com/page/1 y más.", ["invalid_utf8", "contains_url"]),
        ("Todos los seres humanos nacen libres\x07 e iguales <|eot_id|> en dignidad y derechos.",
         ["control_chars", "special_tokens"]),
        ("Todos nacen libres <|eot_id|> e iguales, ver http://example.com/page/1 hoy.",
         ["special_tokens", "contains_url"]),
        ("Visita www.tienda.com | Inicio | Blog | Tienda | Contacto", ["contains_url", "menu_separators"]),
        ("Copyright 2014 Mi Sitio | Inicio | Blog | Tienda | All Rights Reserved.",
         ["boilerplate_phrases", "menu_separators"]),
        ("★★ jajajajajajajajaja ★★ ## ¡qué risa! ★★", ["repeated_chars", "too_many_symbols"]),
        ("★ ENVÍO ★ 555 123 4567 ★ GRATIS ★ 999 888 777 ★ PEDIDOS AHORA ★",
         ["too_many_symbols", "too_many_digits", "too_many_capitals"]),
        ("ЭТО ПРЕДЛОЖЕНИЕ НАПИСАНО ПО-РУССКИ, А НЕ ПО-ИСПАНСКИ.", ["too_many_capitals", "wrong_script"]),
    ],
)
def test_the_first_failing_filter_wins(text, failed):
    """``text`` fails the filters ``failed`` (in ``FILTERS``' order): each names the reason
    while the ones before it are left out, then the text is kept."""
    enabled = list(filters.enabled_filters(CFG))
    for name in failed:
        assert filters.paragraph_reject_reason(text, SPA, CFG, enabled=enabled) == _named(name).reason
        enabled.remove(_named(name))
    assert filters.paragraph_reject_reason(text, SPA, CFG, enabled=enabled) is None
