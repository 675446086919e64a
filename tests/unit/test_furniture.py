import random
from pathlib import Path

import pytest
import regex

from transforms.languages import LANGUAGES, get
from transforms.select import furniture
from transforms.select.config import FurnitureConfig, SelectConfig
from transforms.select.furniture import (
    NAVIGATION,
    NO_SENTENCE_END,
    TEMPLATE_MARKUP,
    TRAILING_SENTENCE,
    furniture_reason,
)
from transforms.select.stage import ParagraphScorer, make_fragments
from transforms.sources.cc100 import Document, read_lines, split_documents

CFG = FurnitureConfig()
DEV = Path(__file__).resolve().parents[2] / "benchmarks" / "furniture_dev"


@pytest.mark.parametrize(
    "code, text",
    [
        ("ben", "পৃষ্ঠাটি পুনরুদ্ধার করুন"),  # "Restore page"
        ("rus", "Добавить эту страницу в список наблюдения"),
        ("ell", "Σημείωση:"),
        ("ara", "تسجيل الدخول"),
        ("tam", "மேலும் படிக்க..."),  # an ellipsis is a teaser, not an end
        ("kor", "로그인 (회원가입)"),
        ("jpn", "次のページへ"),
        ("tha", "หน้าแรก"),  # Thai has no sentence end: short lines count by length alone
        ("mya", "ပင်မစာမျက်နှာ"),
    ],
)
def test_short_line_without_a_sentence_end(code, text):
    assert furniture_reason(text, get(code), CFG) == NO_SENTENCE_END


@pytest.mark.parametrize(
    "code, text",
    [
        ("ben", "আমি আজ বাজারে গিয়েছিলাম।"),
        ("mar", "तो उद्या येईल."),
        ("hin", "वह घर गया॥"),
        ("urd", "وہ کل آئے گا۔"),
        ("ara", "هل أنت بخير؟"),
        ("ell", "Πού είναι το σπίτι σου;"),
        ("ell", "Πού είναι το σπίτι σου\u037e"),
        ("hye", "Նա վաղը կգա։"),
        ("amh", "ሰላም ነው።"),
        ("khm", "ខ្ញុំទៅផ្សារ។"),
        ("mya", "ကျွန်တော် ဈေးသွားတယ်။"),
        ("jpn", "彼は明日来る。"),
        ("rus", "«Он придёт завтра.»"),  # quotes after the end
        ("spa", "¿Vendrá mañana?"),
    ],
)
def test_short_sentences_with_their_scripts_end_are_kept(code, text):
    assert furniture_reason(text, get(code), CFG) is None


def test_long_lines_need_no_sentence_end():
    text = " ".join(["слово"] * 11)
    assert furniture_reason(text, get("rus"), CFG) is None
    assert furniture_reason(" ".join(["слово"] * 10), get("rus"), CFG) == NO_SENTENCE_END
    assert furniture_reason("あ" * 31, get("jpn"), CFG) is None
    assert furniture_reason("あ" * 30, get("jpn"), CFG) == NO_SENTENCE_END
    off = FurnitureConfig(max_short_line_words=None)
    assert furniture_reason("Главная", get("rus"), off) is None


@pytest.mark.parametrize(
    "text",
    [
        "$1 পৃষ্ঠাটি সম্পাদনা করেছেন।",
        "Не удалось подключиться к { $hostname }.",
        "{{Отсутствует источник}} Город основан в 1703 году.",
        "Файл %s не найден.",
        "Сохранить %1$s изменений?",
        "%(count)d новых сообщений.",
        "Удалить %1 файлов?",
        "Ошибка {0} при загрузке.",
        "<b>Примечание:</b> это важно.",
        "Том &amp; Джерри — мультфильм.",
        "Смотрите [[Москва|Москву]] на карте.",
        "Привет, ${user}, добро пожаловать.",
        "已将%d件商品加入购物车。",  # without spaces a placeholder touches the words
        "ลบไฟล์%1แล้ว",
    ],
)
def test_placeholders_and_markup(text):
    assert furniture_reason(text, get("rus"), CFG) == TEMPLATE_MARKUP


@pytest.mark.parametrize(
    "code, text",
    [
        ("tur", "Enflasyon geçen ay %5 arttı ve yıllık %50 oldu."),  # percent before the number
        ("eng", "The price rose by 10% to $15.50 in a year, and 3 < 4 > 2 holds."),
        ("rus", "Цена выросла на 5 % за год, а {x: x > 0} — это множество."),
        ("zho", "今年的销量增长了5%，其中50%的用户来自海外，而%前面的数字表示比例。"),
    ],
)
def test_percentages_prices_and_maths_are_not_markup(code, text):
    assert furniture_reason(text, get(code), CFG) is None


def test_navigation_words_come_from_unended_lines_of_several_documents():
    lang = get("rus")
    menu = ["Главная", "Новости", "Контакты", "Войти", "Спорт", "Культура", "Наверх"]
    docs = [menu + [f"Это длинный абзац номер {i} о жизни в нашем городе."] for i in range(2)]
    nav = furniture.navigation_words(docs, lang, CFG)
    assert {"главная", "новости", "контакты", "войти"} <= nav
    assert "абзац" not in nav  # sentences are not evidence
    assert furniture.navigation_words(docs[:1], lang, CFG) == frozenset()  # one page is no evidence
    assert furniture.navigation_words(docs, lang, FurnitureConfig(navigation_min_documents=None)) == frozenset()
    # a one-line menu, too long for no_sentence_end, or a button row that ends like a sentence
    long_menu = "Главная Новости Спорт Культура Контакты Войти Поделиться Наверх О проекте Реклама"
    assert furniture_reason(long_menu, lang, CFG) is None
    assert furniture_reason(long_menu, lang, CFG, nav) == NAVIGATION  # 7 of 11 words: > 0.5
    assert furniture_reason("Новости. Контакты. Войти.", lang, CFG, nav) == NAVIGATION  # 3 of 3 > 0.7
    prose = "Главная новость города сегодня была о погоде, транспорте и новых домах."
    assert furniture_reason(prose, lang, CFG, nav) is None


def test_a_one_line_menu_in_the_page_chrome_is_evidence():
    """A site whose pages print the menu only as one long line (with different buttons), never
    item by item: the long lines at the pages' top, before a heading, give the words."""
    lang = get("kor")
    menu = "홈 뉴스 스포츠 연예 문의하기 레시피 국 찌개 반찬 디저트"
    pages = [
        [f"{menu} {extra}", f"제목 {i}", f"이것은 {i}번째 기사의 본문으로, 오늘 있었던 일을 자세히 설명한다."]
        for i, extra in enumerate(["공유하기 답글", "로그인 인쇄"])
    ]
    nav = furniture.navigation_words(pages, lang, CFG)
    assert {"뉴스", "찌개", "디저트"} <= nav
    assert furniture_reason(pages[0][0], lang, CFG, nav) == NAVIGATION
    assert furniture_reason(pages[0][2], lang, CFG, nav) is None
    # the same long line among prose is not chrome: no evidence
    prose = [[p[2], p[0], p[2] + " 끝."] for p in pages]
    assert not {"뉴스", "찌개"} & furniture.navigation_words(prose, lang, CFG)


def test_a_sentence_between_furniture_on_several_pages_is_a_template():
    lang = get("rus")
    prompt = "Этот сайт использует файлы cookie для улучшения работы."
    pages = [
        [f"Абзац номер {i} рассказывает о жизни в городе и его людях.", "Поделиться", prompt, "© 2023"]
        for i in range(2)
    ]
    nav = furniture.navigation_words(pages, lang, CFG)
    assert furniture_reason(prompt, lang, CFG, nav) == NAVIGATION
    # the same sentence copied among prose is a copy, not a template: dedup keeps one
    copies = [[f"Абзац номер {i} о жизни в городе.", prompt, "Ещё один абзац о людях."] for i in range(2)]
    nav = furniture.navigation_words(copies, lang, CFG)
    assert furniture_reason(prompt, lang, CFG, nav) is None
    assert furniture.navigation_words(pages[:1], lang, CFG) == frozenset()  # on one page only


def test_a_short_sentence_after_the_prose_among_furniture_only_is_a_trailing_sentence():
    """A site's prompt shown on one page: no count across pages sees it, its place does."""
    lang = get("vie")
    prose = "Người dân vùng ven biển đã được sơ tán đến nơi an toàn trước khi cơn bão đổ bộ."
    prompt = "Đăng nhập để lưu bài viết yêu thích."
    page = ["Trang chủ", prose, "Chia sẻ", "Bình luận", prompt, "© 2024 Báo Sông Hồng"]
    assert furniture.trailing_sentences(page, lang, CFG, frozenset()) == {4}
    doc = Document("vie", "vie.txt", 0, tuple(page))
    (scored,) = ParagraphScorer(lang, SelectConfig()).score([doc])
    reasons = {line["source"]["paragraphs"][0]: line["reason"] for line in scored.rejects}
    assert reasons[4] == TRAILING_SENTENCE and 1 not in reasons
    # not trailing: one furniture line between it and the prose (a caption), prose after it,
    # no prose before it, a long sentence, or the rule off
    for other in (
        ["Trang chủ", prose, "Ảnh: Nguyễn Văn An", prompt, "Chia sẻ"],
        ["Trang chủ", prose, "Chia sẻ", "Bình luận", prompt, prose, "Chia sẻ"],
        ["Trang chủ", "Tin tức", prompt, "Chia sẻ"],
        ["Trang chủ", prose, "Chia sẻ", "Bình luận", prose, "Chia sẻ"],
    ):
        assert furniture.trailing_sentences(other, lang, CFG, frozenset()) == frozenset(), other
    off = FurnitureConfig(trailing_sentence_gap=None)
    assert furniture.trailing_sentences(page, lang, off, frozenset()) == frozenset()


@pytest.mark.parametrize("lang", LANGUAGES.values(), ids=lambda lang: lang.code)
def test_every_language_has_its_terminators(lang):
    assert lang.terminators == "" if set(lang.scripts) <= {"Thai", "Lao"} else "." in lang.terminators


def test_fragments_never_hold_or_bridge_furniture():
    """The scorer drops furniture before fragments are cut: a fragment neither starts nor ends
    with it, nor spans it."""
    prose = "Это длинный абзац о жизни в большом городе, его улицах и людях, которые там живут."
    paragraphs = ("Главная", prose, "Поделиться", prose.replace("городе", "селе"),
                  "Том &amp; Джерри — мультфильм, который знают все дети и взрослые.",
                  prose.replace("людях", "домах"), "Войти", "Читать далее...",
                  "Войдите, чтобы оставить комментарий.", "О проекте")
    doc = Document("rus", "rus.txt", 0, paragraphs)
    cfg = SelectConfig()
    (scored,) = ParagraphScorer(get("rus"), cfg).score([doc])
    reasons = {line["source"]["paragraphs"][0]: line["reason"] for line in scored.rejects}
    assert reasons == {0: NO_SENTENCE_END, 2: NO_SENTENCE_END, 4: TEMPLATE_MARKUP, 6: NO_SENTENCE_END,
                       7: NO_SENTENCE_END, 8: TRAILING_SENTENCE, 9: NO_SENTENCE_END}
    records, _ = make_fragments("rus", cfg, "rus.txt", 0, scored.kept, {})
    spans = [tuple(r["source"]["paragraphs"]) for r in records]
    assert spans == [(1, 1), (3, 3), (5, 5)]


# The fast paths (issue 13) against the rules as first written: the same verdicts.
_TRAILING_RUN = regex.compile(r"[\s\p{Pe}\p{Pf}\p{So}\"'*]+$")
_END_POOL = "ab क。.!?…।؟\"'*)]}»”’ \t\n\u3000\x85★😀\u0301"


def test_ends_sentence_equals_stripping_the_trailing_class_by_regex():
    rng = random.Random(3)
    terminators = ".!?。।؟"
    texts = ["".join(rng.choice(_END_POOL) for _ in range(rng.randrange(0, 24))) for _ in range(20000)]
    for text in texts:
        body = _TRAILING_RUN.sub("", text[-16:])
        expected = bool(body) and body[-1] in terminators and not body.endswith("..")
        assert furniture.ends_sentence(text, terminators) is expected, repr(text)
    assert 0 < sum(furniture.ends_sentence(t, terminators) for t in texts) < len(texts)


def test_is_short_equals_counting_every_word():
    rng = random.Random(4)
    spa = get("spa")
    for _ in range(5000):
        text = "".join(rng.choice("ab  \t\n\u3000\x85") for _ in range(rng.randrange(0, 120)))
        for times in (1, 2, 4):
            assert furniture.is_short(text, spa, CFG, times) is (
                len(text.split()) <= times * CFG.max_short_line_words), repr(text)


@pytest.mark.parametrize("path", sorted(DEV.glob("*.txt")), ids=lambda p: p.stem)
def test_page_reasons_equal_furniture_reason_with_the_trailing_sentences(path):
    lang = get(path.stem)
    with open(path, "rb") as f:
        pages = [paragraphs for _, paragraphs, _ in split_documents(read_lines(f))]
    navigation = furniture.navigation_words(pages, lang, CFG)
    seen = set()
    for paragraphs in pages:
        trailing = furniture.trailing_sentences(paragraphs, lang, CFG, navigation)
        page = furniture.page_reasons(paragraphs, lang, CFG, navigation)
        expected = [furniture_reason(p, lang, CFG, navigation, i in trailing) for i, p in enumerate(paragraphs)]
        assert [page(i) for i in range(len(paragraphs))] == expected
        seen.update(expected)
    assert len(seen) > 2
