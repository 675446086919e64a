"""Small files in the shape of the Aya collection (``inputs``, ``targets``, ``language``,
``task_type``, ``dataset_name``, ``translated``): several languages in one file, templated
answers repeated many times, rows in the wrong language, rows the filters drop, broken rows,
and one answer per language that is also CC-100 text of the bundled sample."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

from pipeline.options import SAMPLE_TEMPLATE

GENUINE = {
    "tel": [
        "తెలుగు భాష దక్షిణ భారతదేశంలో ఎక్కువ మంది మాట్లాడే భాషలలో ఒకటి, దీనికి వెయ్యి సంవత్సరాల సాహిత్య చరిత్ర ఉంది.",
        "వర్షాకాలంలో రైతులు పొలాలను దున్ని వరి నాట్లు వేస్తారు, ఆ తర్వాత నీటి సరఫరాను జాగ్రత్తగా చూసుకుంటారు.",
        "ప్రతి రోజు కొంత సమయం పుస్తకాలు చదవడం వల్ల మన జ్ఞానం పెరుగుతుంది మరియు ఆలోచనా శక్తి మెరుగవుతుంది.",
        "హైదరాబాద్ నగరం చారిత్రక కట్టడాలకు, రుచికరమైన బిర్యానీకి మరియు సాంకేతిక పరిశ్రమలకు ప్రసిద్ధి చెందింది.",
    ],
    "hin": [
        "भारत एक विशाल देश है जहाँ अनेक भाषाएँ बोली जाती हैं और हर क्षेत्र की अपनी अलग संस्कृति और परंपराएँ हैं।",
        "बरसात के मौसम में किसान खेतों की जुताई करते हैं और धान की रोपाई के बाद पानी का ध्यान रखते हैं।",
        "रोज़ थोड़ा समय किताबें पढ़ने में लगाने से हमारा ज्ञान बढ़ता है और सोचने की क्षमता बेहतर होती है।",
        "दिल्ली शहर अपने ऐतिहासिक स्मारकों, स्वादिष्ट भोजन और भीड़भाड़ वाले बाज़ारों के लिए प्रसिद्ध है।",
    ],
}
# One answer template, filled the same way thousands of times in the real collection
TEMPLATED = {
    "tel": "ఇచ్చిన వచనంలో ఈ ప్రశ్నకు సమాధానం ఇవ్వడానికి తగినంత సమాచారం లేదు, కాబట్టి సమాధానం చెప్పలేము.",
    "hin": "दिए गए पाठ में इस प्रश्न का उत्तर देने के लिए पर्याप्त जानकारी नहीं है, इसलिए उत्तर नहीं दिया जा सकता।",
}
YES = {"tel": "అవును", "hin": "हाँ"}
NAMES = {"tel": "telugu", "hin": "hindi"}
WRONG_LANGUAGE = "The capital of the state is a large city with many old buildings and busy markets today."
MARATHI = "महाराष्ट्र हे भारतातील एक मोठे राज्य आहे आणि मुंबई ही त्याची राजधानी आहे, जिथे अनेक लोक राहतात."
REPEATS = 40  # copies of each templated answer per file


def shared_paragraph(lang: str) -> str:
    """A paragraph of the bundled CC-100 sample: the first of 80-200 characters that occurs
    once in it."""
    text = lzma.open(SAMPLE_TEMPLATE.format(lang=lang), "rt", encoding="utf-8", errors="replace").read()
    lines = [line.strip() for line in text.splitlines()]
    return next(line for line in lines if 80 <= len(line) <= 200 and lines.count(line) == 1)


def row(lang: str, targets, task_type: str = "qa", translated: bool = False, language: str | None = None) -> dict:
    return {"inputs": "ప్రశ్న / प्रश्न", "targets": targets, "language": language or NAMES[lang],
            "task_type": task_type, "dataset_name": f"aya-{lang}", "translated": translated,
            "script": "x", "split": "train", "template_id": 1, "sub_dataset_name": "-"}


def rows(langs=("tel", "hin")) -> list[dict]:
    """Rows of every kind, for both languages and two the run does not ask for."""
    out = []
    for lang in langs:
        out += [row(lang, text, "summarization") for text in GENUINE[lang]]
        out += [row(lang, TEMPLATED[lang]) for _ in range(REPEATS)]
        out += [row(lang, YES[lang]) for _ in range(REPEATS)]
        out.append(row(lang, shared_paragraph(lang)))
        out.append(row(lang, WRONG_LANGUAGE))  # labelled as the language, written in English
        if lang == "hin":  # labelled Hindi, written in Marathi: the same script
            out.append(row(lang, MARATHI))
        out.append(row(lang, GENUINE[lang][0] + " (1)", task_type="translation"))  # filtered: task
        out.append(row(lang, GENUINE[lang][1] + " (2)", translated=True))  # filtered: translated
        out.append(row(lang, "   "))  # empty
        out.append(row(lang, None))  # missing
    out.append(row("tel", "Una respuesta en español, que esta ejecución no pide.", language="spanish"))
    out.append(row("tel", "A row in a language nobody knows.", language="klingon"))
    return out


JSONL_GENUINE = {
    "tel": "పిల్లలకు చిన్నతనం నుంచే పరిశుభ్రత అలవాట్లు నేర్పిస్తే వారు ఆరోగ్యంగా పెరుగుతారు అని వైద్యులు చెబుతారు.",
    "hin": "बच्चों को बचपन से ही साफ़-सफ़ाई की आदतें सिखाई जाएँ तो वे स्वस्थ रहते हैं, ऐसा डॉक्टर कहते हैं।",
}
INVALID_LINE = "{not json"


def jsonl_rows(langs=("tel", "hin")) -> list[dict]:
    """The JSONL file's rows: its own answers, a number where text should be, and copies of
    the Parquet file's templated answer (duplicates across sources)."""
    out = []
    for lang in langs:
        out.append(row(lang, JSONL_GENUINE[lang]))
        out.append(row(lang, 12345))  # text_not_string
        out += [row(lang, TEMPLATED[lang]) for _ in range(5)]
    return out


def write_parquet(path: Path, data: list[dict], row_group_size: int = 25) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(data), path, row_group_size=row_group_size)


def write_jsonl(path: Path, data: list[dict], extra_lines: tuple[str, ...] = ()) -> None:
    lines = [json.dumps(r, ensure_ascii=False) for r in data] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def config_yaml(parquet: str, jsonl: str, text_field: str = "targets") -> str:
    return f"""sources:
  - name: aya
    kind: parquet
    path: {parquet}
    text_field: {text_field}
    id_field: template_id
    lang_field: language
    lang_values: {{tel: telugu, hin: hindi}}
    where: {{task_type: [qa, summarization], translated: false}}
  - name: aya-jsonl
    kind: jsonl
    path: {jsonl}
    text_field: {text_field}
    lang_field: language
    lang_values: {{tel: telugu, hin: hindi}}
    where: {{task_type: [qa, summarization], translated: false}}
"""
