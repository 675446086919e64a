"""Registry of the CC-100 languages: ISO 639-3 code <-> CC-100 file code <-> NLLB-200 code
<-> fastText lid.176 label <-> Unicode script(s).

Keys are ISO 639-3 codes. Where CC-100 has several corpora of one language (romanized Hindi,
Traditional Chinese, Zawgyi-encoded Burmese) the key adds a script or encoding suffix in the
FLORES style: ``hin_Latn``, ``zho_Hant``, ``mya_Zawgyi``. ``-`` in the table means the model has
no such language: NLLB cannot translate it, or lid.176 cannot identify it (the language-ID
check is then skipped for it and the stats say so).

Scripts are names understood by the ``regex`` module (``\\p{Script=...}``); ``spaced`` tells
whether words are separated by spaces (it picks word or character shingles for dedup).
``terminators`` are the characters that end a sentence in the language's scripts (empty for
Thai and Lao, which end sentences with a space, not a mark).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_KEY = re.compile(r"^[a-z]{3}(_[A-Za-z]{4,7})?$")

# iso   cc100   nllb       lid176  spaced scripts                  name
_TABLE = """
afr     af      afr_Latn   af      y   Latin                       Afrikaans
amh     am      amh_Ethi   am      y   Ethiopic                    Amharic
ara     ar      arb_Arab   ar      y   Arabic                      Arabic
asm     as      asm_Beng   as      y   Bengali                     Assamese
aze     az      azj_Latn   az      y   Latin                       Azerbaijani
bel     be      bel_Cyrl   be      y   Cyrillic                    Belarusian
bul     bg      bul_Cyrl   bg      y   Cyrillic                    Bulgarian
ben     bn      ben_Beng   bn      y   Bengali                     Bengali
ben_Latn bn_rom -          -       y   Latin                       Bengali (romanized)
bre     br      -          br      y   Latin                       Breton
bos     bs      bos_Latn   bs      y   Latin                       Bosnian
cat     ca      cat_Latn   ca      y   Latin                       Catalan
ces     cs      ces_Latn   cs      y   Latin                       Czech
cym     cy      cym_Latn   cy      y   Latin                       Welsh
dan     da      dan_Latn   da      y   Latin                       Danish
deu     de      deu_Latn   de      y   Latin                       German
ell     el      ell_Grek   el      y   Greek                       Greek
eng     en      eng_Latn   en      y   Latin                       English
epo     eo      epo_Latn   eo      y   Latin                       Esperanto
spa     es      spa_Latn   es      y   Latin                       Spanish
est     et      est_Latn   et      y   Latin                       Estonian
eus     eu      eus_Latn   eu      y   Latin                       Basque
fas     fa      pes_Arab   fa      y   Arabic                      Persian
ful     ff      fuv_Latn   -       y   Latin                       Fulah
fin     fi      fin_Latn   fi      y   Latin                       Finnish
fra     fr      fra_Latn   fr      y   Latin                       French
fry     fy      -          fy      y   Latin                       Western Frisian
gle     ga      gle_Latn   ga      y   Latin                       Irish
gla     gd      gla_Latn   gd      y   Latin                       Scottish Gaelic
glg     gl      glg_Latn   gl      y   Latin                       Galician
grn     gn      grn_Latn   gn      y   Latin                       Guarani
guj     gu      guj_Gujr   gu      y   Gujarati                    Gujarati
hau     ha      hau_Latn   -       y   Latin                       Hausa
heb     he      heb_Hebr   he      y   Hebrew                      Hebrew
hin     hi      hin_Deva   hi      y   Devanagari                  Hindi
hin_Latn hi_rom -          -       y   Latin                       Hindi (romanized)
hrv     hr      hrv_Latn   hr      y   Latin                       Croatian
hat     ht      hat_Latn   ht      y   Latin                       Haitian Creole
hun     hu      hun_Latn   hu      y   Latin                       Hungarian
hye     hy      hye_Armn   hy      y   Armenian                    Armenian
ind     id      ind_Latn   id      y   Latin                       Indonesian
ibo     ig      ibo_Latn   -       y   Latin                       Igbo
isl     is      isl_Latn   is      y   Latin                       Icelandic
ita     it      ita_Latn   it      y   Latin                       Italian
jpn     ja      jpn_Jpan   ja      n   Han,Hiragana,Katakana       Japanese
jav     jv      jav_Latn   jv      y   Latin                       Javanese
kat     ka      kat_Geor   ka      y   Georgian                    Georgian
kaz     kk      kaz_Cyrl   kk      y   Cyrillic                    Kazakh
khm     km      khm_Khmr   km      n   Khmer                       Khmer
kan     kn      kan_Knda   kn      y   Kannada                     Kannada
kor     ko      kor_Hang   ko      y   Hangul,Han                  Korean
kur     ku      kmr_Latn   ku      y   Latin                       Kurdish (Kurmanji)
kir     ky      kir_Cyrl   ky      y   Cyrillic                    Kyrgyz
lat     la      -          la      y   Latin                       Latin
lug     lg      lug_Latn   -       y   Latin                       Ganda
lim     li      lim_Latn   li      y   Latin                       Limburgish
lin     ln      lin_Latn   -       y   Latin                       Lingala
lao     lo      lao_Laoo   lo      n   Lao                         Lao
lit     lt      lit_Latn   lt      y   Latin                       Lithuanian
lav     lv      lvs_Latn   lv      y   Latin                       Latvian
mlg     mg      plt_Latn   mg      y   Latin                       Malagasy
mkd     mk      mkd_Cyrl   mk      y   Cyrillic                    Macedonian
mal     ml      mal_Mlym   ml      y   Malayalam                   Malayalam
mon     mn      khk_Cyrl   mn      y   Cyrillic                    Mongolian
mar     mr      mar_Deva   mr      y   Devanagari                  Marathi
msa     ms      zsm_Latn   ms      y   Latin                       Malay
mya     my      mya_Mymr   my      n   Myanmar                     Burmese
mya_Zawgyi my_zaw -        my      n   Myanmar                     Burmese (Zawgyi encoding)
nep     ne      npi_Deva   ne      y   Devanagari                  Nepali
nld     nl      nld_Latn   nl      y   Latin                       Dutch
nor     no      nob_Latn   no      y   Latin                       Norwegian
nso     ns      nso_Latn   -       y   Latin                       Northern Sotho
orm     om      gaz_Latn   -       y   Latin                       Oromo
ori     or      ory_Orya   or      y   Oriya                       Odia
pan     pa      pan_Guru   pa      y   Gurmukhi                    Punjabi
pol     pl      pol_Latn   pl      y   Latin                       Polish
pus     ps      pbt_Arab   ps      y   Arabic                      Pashto
por     pt      por_Latn   pt      y   Latin                       Portuguese
que     qu      quy_Latn   qu      y   Latin                       Quechua
roh     rm      -          rm      y   Latin                       Romansh
ron     ro      ron_Latn   ro      y   Latin                       Romanian
rus     ru      rus_Cyrl   ru      y   Cyrillic                    Russian
san     sa      san_Deva   sa      y   Devanagari                  Sanskrit
srd     sc      srd_Latn   sc      y   Latin                       Sardinian
snd     sd      snd_Arab   sd      y   Arabic                      Sindhi
sin     si      sin_Sinh   si      y   Sinhala                     Sinhala
slk     sk      slk_Latn   sk      y   Latin                       Slovak
slv     sl      slv_Latn   sl      y   Latin                       Slovenian
som     so      som_Latn   so      y   Latin                       Somali
sqi     sq      als_Latn   sq      y   Latin                       Albanian
srp     sr      srp_Cyrl   sr      y   Cyrillic,Latin              Serbian
ssw     ss      ssw_Latn   -       y   Latin                       Swati
sun     su      sun_Latn   su      y   Latin                       Sundanese
swe     sv      swe_Latn   sv      y   Latin                       Swedish
swa     sw      swh_Latn   sw      y   Latin                       Swahili
tam     ta      tam_Taml   ta      y   Tamil                       Tamil
tam_Latn ta_rom -          -       y   Latin                       Tamil (romanized)
tel     te      tel_Telu   te      y   Telugu                      Telugu
tel_Latn te_rom -          -       y   Latin                       Telugu (romanized)
tha     th      tha_Thai   th      n   Thai                        Thai
tgl     tl      tgl_Latn   tl      y   Latin                       Tagalog
tsn     tn      tsn_Latn   -       y   Latin                       Tswana
tur     tr      tur_Latn   tr      y   Latin                       Turkish
uig     ug      uig_Arab   ug      y   Arabic                      Uyghur
ukr     uk      ukr_Cyrl   uk      y   Cyrillic                    Ukrainian
urd     ur      urd_Arab   ur      y   Arabic                      Urdu
urd_Latn ur_rom -          -       y   Latin                       Urdu (romanized)
uzb     uz      uzn_Latn   uz      y   Latin                       Uzbek
vie     vi      vie_Latn   vi      y   Latin                       Vietnamese
wol     wo      wol_Latn   -       y   Latin                       Wolof
xho     xh      xho_Latn   -       y   Latin                       Xhosa
yid     yi      ydd_Hebr   yi      y   Hebrew                      Yiddish
yor     yo      yor_Latn   yo      y   Latin                       Yoruba
zho     zh-Hans zho_Hans   zh      n   Han                         Chinese (Simplified)
zho_Hant zh-Hant zho_Hant  zh      n   Han                         Chinese (Traditional)
zul     zu      zul_Latn   -       y   Latin                       Zulu
"""


# Sentence-final marks per script, beyond the ". ! ?" that web text in every other script uses.
# Greek asks with ";" (U+037E or ASCII); Armenian web text ends sentences with ":" as often as
# with its own full stop; Thai and Lao have no sentence-final mark at all.
_COMMON_TERMINATORS = ".!?"
_SCRIPT_TERMINATORS = {
    "Arabic": "؟۔",
    "Armenian": "։:",
    "Bengali": "।॥",
    "Devanagari": "।॥",
    "Ethiopic": "።፧",
    "Greek": "\u037e;",
    "Gujarati": "।॥",
    "Gurmukhi": "।॥",
    "Han": "。！？．｡",
    "Hebrew": "׃",
    "Hiragana": "。！？．｡",
    "Katakana": "。！？．｡",
    "Khmer": "។៕",
    "Myanmar": "။",
    "Oriya": "।॥",
    "Sinhala": "෴",
}
_NO_TERMINATORS = {"Thai", "Lao"}


@dataclass(frozen=True)
class Language:
    code: str  # our key: ISO 639-3, plus a script/encoding suffix for CC-100's variants
    cc100: str  # CC-100 file code (``te`` for ``te.txt.xz``)
    nllb: str | None  # NLLB-200 language code, None where NLLB has none
    lid176: str | None  # fastText lid.176 label without ``__label__``, None where it has none
    spaced: bool  # words separated by spaces
    scripts: tuple[str, ...]  # Unicode scripts the language is written in
    name: str

    @functools.cached_property
    def terminators(self) -> str:
        """Characters that end a sentence in this language's scripts; empty where the scripts
        have none (Thai, Lao), so no check can rely on them."""
        if set(self.scripts) <= _NO_TERMINATORS:
            return ""
        marks = _COMMON_TERMINATORS + "".join(_SCRIPT_TERMINATORS.get(s, "") for s in self.scripts)
        return "".join(dict.fromkeys(marks))

    @property
    def glotlid(self) -> str | None:
        """GlotLID-style label (``tel_Telu``): the NLLB code, which follows the same scheme."""
        return self.nllb


def _parse(table: str) -> dict[str, Language]:
    languages = {}
    for line in table.strip().splitlines():
        code, cc100, nllb, lid, spaced, scripts, name = line.split(maxsplit=6)
        languages[code] = Language(
            code=code,
            cc100=cc100,
            nllb=None if nllb == "-" else nllb,
            lid176=None if lid == "-" else lid,
            spaced=spaced == "y",
            scripts=tuple(scripts.split(",")),
            name=name,
        )
    return languages


LANGUAGES: dict[str, Language] = _parse(_TABLE)


class UnknownLanguageError(ValueError):
    pass


def get(code: str) -> Language:
    """The language for ``code``; a clear error listing the supported codes otherwise."""
    if not _KEY.match(code) or code not in LANGUAGES:
        raise UnknownLanguageError(
            f"unknown language code {code!r}: expected an ISO 639-3 code of a CC-100 language, "
            f"one of: {', '.join(sorted(LANGUAGES))}"
        )
    return LANGUAGES[code]


def parse_langs(value: str) -> list[Language]:
    """``"tel,hin"`` -> languages, in order, without repeats."""
    codes = [c.strip() for c in value.split(",") if c.strip()]
    if not codes:
        raise UnknownLanguageError("--langs is empty: give comma-separated ISO 639-3 codes, e.g. tel,hin")
    return [get(code) for code in dict.fromkeys(codes)]
