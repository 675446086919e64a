"""``OUT/report.md`` and ``OUT/plots/*.png``: a human summary of a run, made from
``OUT/stats/{lang}.json`` alone, so it needs nothing else the run left in memory.

``render`` writes the markdown, ``plots`` draws the PNGs (matplotlib's Agg canvas, no display,
to bytes), and ``write`` puts both through Beam's filesystems, so OUT can be a bucket.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

from apache_beam.io.filesystems import FileSystems

from transforms.languages import LANGUAGES
from transforms.records.write import writing

LICENCE_NOTE = (
    "CC-100 is built from Common Crawl snapshots; Common Crawl's terms of use apply to the "
    "text, and no additional licence is granted by this dataset or this pipeline."
)
STAND_IN_NOTE = (
    "**Demo run.** The models are random stand-ins built locally (`tiny:*`): their "
    "translations, instructions and scores mean nothing. This run proves the plumbing, not quality."
)
COMET_SCORES = ("qe_response", "qe_instruction")
KEPT_COLOR = "#4c9a2a"
SCORE_TITLES = {
    "qe_response": "COMET-kiwi, R_x -> R_en (translate)",
    "judge": "judge score (0-5)",
    "qe_instruction": "COMET-kiwi, I_en -> I_x (qe)",
}


def _read_json(path: str) -> dict:
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def _table(header: list[str], rows: list[list], align: str = "") -> list[str]:
    """A markdown table; ``align`` has one letter per column: l(eft) or r(ight, the default)."""
    rule = ["---" if (align[i:i + 1] or "r") == "l" else "---:" for i in range(len(header))]
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(rule) + " |",
        *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows),
    ]


def _reasons(rejected: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(rejected.items())) or "-"


def is_evol(stats: list[dict]) -> bool:
    """Whether these are the stats of an evol run (they count seed rows, not paragraphs)."""
    return any("seeds" in s for s in stats)


def _stages_run(stats: list[dict]) -> list[str]:
    """The model stages that counted anything in any language, in pipeline order (the stats
    list them in it)."""
    return list(dict.fromkeys(stage for s in stats for stage in s["stages"]))


def stage_models(config: dict, stages: list[str]) -> list[tuple[str, str, str]]:
    """(stage, model, prompts) of the first stage and the ``stages`` that ran, as each stage's
    declaration reports itself from the run's config."""
    from pipeline.methods import METHODS

    method = METHODS[config.get("method", "natural")]
    known = [method.stage(name) for name in stages if method.knows(name)]  # not the trim: no model
    return [(stage.name, *stage.report(config)) for stage in (method.stages[0], *known)]


def uses_stand_ins(stats: list[dict], preset: str) -> bool:
    """Whether the models are the random local stand-ins: the demo preset, or ``tiny:`` names."""
    models = [m for s in stats for _, m, _ in stage_models(s["config"], _stages_run(stats))]
    return preset == "demo" or any("tiny:" in m for m in models)


def _funnel_rows(s: dict) -> list[list]:
    unit = "seeds" if "seeds" in s else "paragraphs"
    p = s[unit]
    rows = [
        [s["lang"], "select", unit, p["read"], p["kept"], _reasons(p["rejected"])],
        [s["lang"], "select", "records", "", s["selected_records"], ""],
    ]
    for stage, c in s["stages"].items():
        rows.append([s["lang"], stage, "records", c["in"], c["out"], _reasons(c["rejected"])])
    return rows


def _mean_std(entry: dict | None) -> str:
    return f"{entry['mean']} ({entry['std']})" if entry else "-"


def _length_rows(stats: list[dict]) -> list[list]:
    return [
        [s["lang"], d["records"], _mean_std(d.get("instruction_chars")), _mean_std(d.get("response_chars"))]
        for s in stats
        if (d := s.get("dataset"))
    ]


def _score_rows(stats: list[dict]) -> list[list]:
    rows = []
    for s in stats:
        for name, entry in s.get("scores", {}).items():
            threshold = entry["threshold"] if entry["threshold"] is not None else "off"
            mean = entry["mean"] if entry["mean"] is not None else "-"
            scored = entry["count"]
            if entry.get("invalid"):
                scored = f"{scored} (+{entry['invalid']} not finite)"
            rows.append([name, s["lang"], scored, mean, threshold])
    return rows


def _task_rows(stats: list[dict]) -> tuple[list[str], list[list]]:
    tasks = sorted({t for s in stats for t in s.get("dataset", {}).get("tasks", {})})
    rows = []
    for s in stats:
        counts = s.get("dataset", {}).get("tasks", {})
        total = sum(counts.values())
        if total:
            rows.append([s["lang"], *(f"{counts.get(t, 0)} ({counts.get(t, 0) / total:.0%})" for t in tasks)])
    return tasks, rows


def _threshold_rows(stats: list[dict]) -> list[list]:
    rows = []
    for s in stats:
        c = s["config"]
        select = c.get("select", {})
        fragment = select.get("fragment", {})
        rows.append([
            s["lang"],
            f"{fragment.get('min_chars', '?')}-{fragment.get('max_chars', '?')}",
            select.get("lid", {}).get("min_confidence"),
            select.get("dedup", {}).get("threshold"),
            c.get("judge", {}).get("min_score"),
            c.get("qe", {}).get("min_response"),
            c.get("qe", {}).get("min_instruction"),
        ])
    return [[("off" if v is None else v) for v in row] for row in rows]


def _source_rows(stats: list[dict]) -> list[list]:
    rows = []
    for s in stats:
        for name, c in s.get("sources", {}).items():
            rows.append([s["lang"], name, c["read"], c["kept"], sum(c["rejected"].values()),
                         _reasons(c["rejected"]), c.get("selected", 0), c.get("records", 0)])
    return rows


def _source_section(stats: list[dict]) -> list[str]:
    """What each source gave each language: rows or paragraphs read, kept and rejected in
    select (by reason), records selected and records in ``data/``."""
    rows = _source_rows(stats)
    if not rows:
        return []
    return [
        "## Sources",
        "",
        "Per source: CC-100 counts paragraphs, a tabular source (JSONL, Parquet) rows; "
        "`read = kept + rejected`. Rows of languages the run did not ask for are not read.",
        "",
        *_table(["lang", "source", "read", "kept", "rejected", "rejected by reason", "selected records",
                 "final records"], rows, "llrrrlrr"),
        "",
    ]


def _target_section(stats: list[dict]) -> list[str]:
    """With --target: per language the target, the fragments selected and drawn for the model
    stages, the records that reached the end and the final records (``docs/target.md``)."""
    from transforms.draw.stage import STAGE, TRIM

    rows = []
    for s in stats:
        target = s["config"].get("target", {}).get("records")
        if target is None or TRIM not in s["stages"]:
            continue
        drawn, trim = s["stages"].get(STAGE, {}).get("out", 0), s["stages"][TRIM]
        short = target - trim["out"]
        rows.append([s["lang"], target, s["selected_records"], f"{drawn} ({drawn / max(s['selected_records'], 1):.0%})",
                     trim["in"], trim["out"], short if short > 0 else "-"])
    if not rows:
        return []
    return [
        "## Target",
        "",
        "The model stages got a stratified draw of the selected fragments (`draw`; the rest are "
        "`not_drawn`, kept in the select checkpoint), in tranches until the target was reached; "
        "records past the target are trimmed (`over_target`). A shortfall: every selected "
        "fragment was drawn and no more passed.",
        "",
        *_table(["lang", "target", "selected", "drawn", "passed", "final records", "shortfall"], rows, "l"),
        "",
    ]


def _image(plots: Sequence[str], name: str, alt: str) -> list[str]:
    return [f"![{alt}](plots/{name}.png)", ""] if name in plots else []


def render(stats: list[dict], preset: str, plots: Sequence[str] = ()) -> str:
    """The markdown report; ``plots`` are the names of the PNGs written under ``plots/``."""
    stand_ins = uses_stand_ins(stats, preset)
    evol = is_evol(stats)
    unit = "seed row" if evol else "paragraph"
    lines = [
        "# Run report",
        "",
        f"Preset: `{preset}`. Every input {unit} is either in a kept record or in "
        "`rejects/{lang}/` with its reason.",
        "",
        *([STAND_IN_NOTE, ""] if stand_ins else []),
        "## Selection",
        "",
        *(_table(["lang", "seed rows read", "kept", "rejected", "rejected by reason"],
                 [[s["lang"], s["seeds"]["read"], s["seeds"]["kept"], sum(s["seeds"]["rejected"].values()),
                   _reasons(s["seeds"]["rejected"])] for s in stats if "seeds" in s], "lrrrl") if evol else _table(
            ["lang", "paragraphs read", "kept", "rejected", "records", "response chars mean (std)"],
            [
                [s["lang"], s["paragraphs"]["read"], s["paragraphs"]["kept"],
                 sum(s["paragraphs"]["rejected"].values()), s["selected_records"],
                 _mean_std(s["lengths"]["response_chars"])]
                for s in stats
            ],
            "l",
        )),
        "",
        *_source_section(stats),
        *_target_section(stats),
        "## Funnel",
        "",
        f"Selection counts {unit}s, then records; each later stage counts records: "
        "`in = kept + rejected`, and a stage's `in` is the previous stage's `kept`.",
        "",
    ]
    for s in stats:
        lines += _image(plots, f"funnel_{s['lang']}", f"funnel {s['lang']}")
    lines += _table(["lang", "stage", "unit", "in", "kept", "rejected by reason"],
                    [row for s in stats for row in _funnel_rows(s)], "lllrrl")
    lines += evol_sections(stats) if evol else _dataset_sections(stats, plots)
    lines += _card(stats, preset, stand_ins)
    return "\n".join(lines) + "\n"


def _share_table(stats: list[dict], key: str, label: str) -> list[str]:
    """A table of one evol count (``tasks``, ``operations``, ``structures``, ``turns``) per
    language, with shares of the language's conversations."""
    names = sorted({str(k) for s in stats for k in s.get("evol", {}).get(key, {})}, key=_natural_key)
    rows = []
    for name in names:
        row = [name]
        for s in stats:
            counts = {str(k): v for k, v in s.get("evol", {}).get(key, {}).items()}
            total = sum(counts.values())
            row.append(f"{counts.get(name, 0)} ({counts.get(name, 0) / total:.0%})" if total else "-")
        rows.append(row)
    return _table([label, *(s["lang"] for s in stats)], rows, "l") + [""]


def _natural_key(name: str):
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def evol_sections(stats: list[dict]) -> list[str]:
    """The evol method's conversations in ``data/``: task x operation mix, dialogue structures,
    user turns per conversation, and characters per message, by role and per turn."""
    lines = ["", "## Conversations", ""]
    if not any(s.get("evol") for s in stats):
        return lines + ["No finished conversations in these stats.", ""]
    lines += ["Conversations in `data/` by task and step-1 evolution operation (`task/operation`):", ""]
    lines += _share_table(stats, "operations", "task/operation")
    lines += ["By task:", ""] + _share_table(stats, "tasks", "task")
    lines += ["By step-2 dialogue structure:", ""] + _share_table(stats, "structures", "structure")
    lines += ["User turns per conversation:", ""] + _share_table(stats, "turns", "user turns")
    turns = sorted({t for s in stats for t in s.get("evol", {}).get("turn_chars", {})}, key=int)
    rows = []
    for turn in turns:
        for role in ("user", "assistant"):
            row = [turn, role]
            for s in stats:
                entry = s.get("evol", {}).get("turn_chars", {}).get(turn, {}).get(role)
                row.append(f"{entry['mean_chars']} (n={entry['messages']})" if entry else "-")
            rows.append(row)
    lines += ["Characters per message, mean (messages), by turn and role:", ""]
    lines += _table(["turn", "role", *(s["lang"] for s in stats)], rows, "ll") + [""]
    score_rows = _score_rows(stats)
    if score_rows:
        lines += ["## Scores", "", "The judge's rating of every conversation it judged, before its threshold.", ""]
        lines += _table(["score", "lang", "scored", "mean", "threshold"], score_rows, "ll") + [""]
    return lines


def _dataset_sections(stats: list[dict], plots: Sequence[str]) -> list[str]:
    """Lengths (the paper's Table 2), score histograms and the task mix, where counted."""
    lines = ["", "## Final records", ""]
    length_rows = _length_rows(stats)
    if length_rows:
        lines += ["Lengths in characters, mean (std), of the records in `data/`:", ""]
        lines += _table(["lang", "records", "instruction", "response"], length_rows, "l") + [""]
    else:
        lines += ["No final-record statistics in these stats.", ""]
    score_rows = _score_rows(stats)
    if score_rows:
        lines += ["## Scores", "",
                  "Every record a stage scored, before its threshold applied (the dashed line). "
                  "COMET-kiwi scores are binned by 0.05; any under 0 count in the first bin, any of "
                  "1 or more in the last.", ""]
        lines += _image(plots, "judge", "judge scores") + _image(plots, "comet", "COMET-kiwi scores")
        lines += _table(["score", "lang", "scored", "mean", "threshold"], score_rows, "ll") + [""]
    tasks, task_rows = _task_rows(stats)
    if task_rows:
        lines += ["## Task mix", ""] + _image(plots, "tasks", "task mix")
        lines += _table(["lang", *tasks], task_rows, "l") + [""]
    return lines


def _card(stats: list[dict], preset: str, stand_ins: bool) -> list[str]:
    """The dataset card: what the data is, where it comes from, what made it."""
    config = stats[0]["config"] if stats else {}
    languages = ", ".join(
        f"{s['lang']} ({LANGUAGES[s['lang']].name})" if s["lang"] in LANGUAGES else s["lang"] for s in stats
    )
    stages = _stages_run(stats)
    evol = is_evol(stats)
    lines = [
        "## Dataset card",
        "",
        f"- **Languages**: {languages}.",
        f"- **Data**: {EVOL_DATA if evol else _data_description(stages)}",
        f"- **Source and licence**: {EVOL_LICENCE_NOTE if evol else LICENCE_NOTE}",
        f"- **Preset**: `{preset}`.",
    ]
    if stand_ins:
        lines.append(f"- {STAND_IN_NOTE}")
    lines += ["", "Models and prompts:", ""]
    lines += _table(["stage", "model", "prompts"], [list(r) for r in stage_models(config, stages)], "lll")
    lines += ["", "Thresholds (`off`: not applied):", ""]
    if evol:
        return lines + _table(["lang", "per-turn LID min confidence", "near-duplicate Jaccard", "judge min"],
                              _evol_threshold_rows(stats), "l")
    lines += _table(
        ["lang", "fragment chars", "LID min confidence", "near-duplicate Jaccard",
         "judge min (lambda)", "COMET min R_x -> R_en", "COMET min I_en -> I_x"],
        _threshold_rows(stats), "l",
    )
    return lines


EVOL_DATA = ("multi-turn conversations (`messages`) an LLM evolved from seed examples: step 1 "
             "made each seed's instruction harder by one evolution operation of its task and answered "
             "it, step 2 grew the exchange into more user turns following a dialogue structure, all "
             "in the seed's language.")
EVOL_LICENCE_NOTE = ("the seed examples' own licence applies to what the conversations take from them, "
                     "and the LLM's terms of use to its output.")


def _evol_threshold_rows(stats: list[dict]) -> list[list]:
    rows = []
    for s in stats:
        evol = s["config"].get("evol", {})
        rows.append([s["lang"], evol.get("min_turn_lid_confidence"), evol.get("dedup_threshold"),
                     evol.get("judge_min_score")])
    return [[("off" if v is None else v) for v in row] for row in rows]


def _data_description(stages: list[str]) -> str:
    """What a record of ``data/`` is, given the last stage that ran."""
    if "backtranslate" in stages:
        return ("instruction-response pairs: the response is natural text selected from CC-100, "
                "verbatim; an LLM wrote the instruction for its English translation, and the "
                "instruction was translated back into the language.")
    if "generate" in stages:
        return ("natural text selected from CC-100, verbatim, with its English translation and "
                "an English instruction an LLM wrote for it (the run stopped before backtranslate).")
    return (f"natural text selected from CC-100, verbatim (the run stopped after "
            f"{stages[-1] if stages else 'select'}: no instructions yet).")


def plots(stats: list[dict]) -> dict[str, bytes]:
    """PNG bytes by name: a funnel per language, judge and COMET score histograms and the task
    mix, each only where the stats have its data. matplotlib is imported here: it costs
    ~0.5 s and only the report needs it. Margins are fixed rather than fitted (``bbox_inches=
    "tight"`` draws every figure twice)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def png(fig: Figure) -> bytes:
        FigureCanvasAgg(fig)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()

    colors = _reason_colors(stats)
    out = {f"funnel_{s['lang']}": png(_funnel_figure(Figure(figsize=(11, 3.2)), s, colors)) for s in stats}
    if any("judge" in s.get("scores", {}) for s in stats):
        out["judge"] = png(_judge_figure(Figure(figsize=(7.5, 3.5)), stats))
    comet = [name for name in COMET_SCORES if any(name in s.get("scores", {}) for s in stats)]
    if comet:
        out["comet"] = png(_comet_figure(Figure(figsize=(1.5 + 6 * len(comet), 3.5)), stats, comet))
    if any(s.get("dataset", {}).get("tasks") for s in stats):
        out["tasks"] = png(_tasks_figure(Figure(figsize=(8, 1.2 + 0.4 * len(stats))), stats))
    return out


def _reason_colors(stats: list[dict]) -> dict[str, tuple]:
    """One colour per reject reason, the same in every language's funnel; no green, which
    is kept's."""
    from matplotlib import colormaps

    reasons = sorted({r for s in stats for r in s.get("seeds", s["paragraphs"])["rejected"]}
                     | {r for s in stats for c in s["stages"].values() for r in c["rejected"]})
    palette = [c for i, c in enumerate(colormaps["tab20"].colors) if i not in (4, 5)]
    return {reason: palette[i % len(palette)] for i, reason in enumerate(reasons)}


def _stacked_bars(ax, bars: list[tuple[str, int, dict[str, int]]], colors: dict[str, tuple]) -> None:
    """Horizontal bars, top to bottom: (label, kept, rejected by reason) stacked left to right."""
    labels = [label for label, _, _ in bars]
    y = range(len(bars))
    ax.barh(y, [kept for _, kept, _ in bars], color=KEPT_COLOR, label="kept")
    left = [kept for _, kept, _ in bars]
    for reason, color in colors.items():
        widths = [rejected.get(reason, 0) for _, _, rejected in bars]
        if any(widths):
            ax.barh(y, widths, left=left, color=color, label=reason)
            left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()


def _outside_legend(ax) -> None:
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)


def _funnel_figure(fig, s: dict, colors: dict[str, tuple]):
    left, right = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.07, right=0.84, bottom=0.17, top=0.86, wspace=0.45)
    unit = "seeds" if "seeds" in s else "paragraphs"
    p = s[unit]
    _stacked_bars(left, [("select", p["kept"], p["rejected"])], colors)
    left.set_xlabel("seed rows" if unit == "seeds" else unit)
    records = [("selected", s["selected_records"], {})]
    records += [(stage, c["out"], c["rejected"]) for stage, c in s["stages"].items()]
    _stacked_bars(right, records, colors)
    right.set_xlabel("records")
    handles = {}  # label -> bar: one legend for both panels
    for ax in (left, right):
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.set_figheight(max(3.2, 1.0 + 0.16 * len(handles)))  # room for every reason
    fig.legend(handles.values(), handles.keys(), fontsize=7, loc="upper left", bbox_to_anchor=(0.85, 0.86),
               frameon=False)
    fig.suptitle(f"{s['lang']}: kept and rejected by reason, per stage")
    return fig


def _judge_figure(fig, stats: list[dict]):
    ax = fig.subplots()
    fig.subplots_adjust(right=0.78, bottom=0.15, top=0.92)
    judged = [s for s in stats if "judge" in s.get("scores", {})]
    width = 0.8 / len(judged)
    for k, s in enumerate(judged):
        entry = s["scores"]["judge"]
        shares = [n / max(entry["count"], 1) for n in entry["hist"].values()]
        ax.bar([int(b) - 0.4 + width * (k + 0.5) for b in entry["hist"]], shares, width,
               label=f"{s['lang']} (n={entry['count']})")
    _threshold_line(ax, judged[0]["scores"]["judge"]["threshold"], offset=-0.5)
    ax.set_xticks(range(6))
    ax.set(xlabel=SCORE_TITLES["judge"], ylabel="share of judged records")
    _outside_legend(ax)
    return fig


def _comet_figure(fig, stats: list[dict], names: list[str]):
    fig.subplots_adjust(left=0.06, right=0.86, bottom=0.15, top=0.92, wspace=0.2)
    for ax, name in zip(fig.subplots(1, len(names), squeeze=False)[0], names, strict=True):
        scored = [s for s in stats if name in s.get("scores", {})]
        for s in scored:
            entry = s["scores"][name]
            shares = [n / max(entry["count"], 1) for n in entry["hist"].values()]
            edges = [float(b) for b in entry["hist"]] + [float(list(entry["hist"])[-1]) + 0.05]
            ax.stairs(shares, edges, label=s["lang"])
        _threshold_line(ax, scored[0]["scores"][name]["threshold"])
        ax.set(xlabel=f"{SCORE_TITLES[name]}; bins of 0.05", ylabel="share of scored records")
    _outside_legend(ax)  # the last panel's: the same languages
    return fig


def _threshold_line(ax, threshold, offset: float = 0.0) -> None:
    """The threshold as a dashed line at the edge of the lowest bin it keeps."""
    if threshold is not None:
        ax.axvline(threshold + offset, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold}")


def _tasks_figure(fig, stats: list[dict]):
    ax = fig.subplots()
    fig.subplots_adjust(left=0.1, right=0.78, bottom=0.6 / fig.get_figheight(), top=0.95)
    rows = [s for s in stats if s.get("dataset", {}).get("tasks")]
    tasks = sorted({t for s in rows for t in s["dataset"]["tasks"]})
    left = [0.0] * len(rows)
    for task in tasks:
        shares = [s["dataset"]["tasks"].get(task, 0) / sum(s["dataset"]["tasks"].values()) for s in rows]
        ax.barh(range(len(rows)), shares, left=left, label=task)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    ax.set_yticks(range(len(rows)), [s["lang"] for s in rows])
    ax.invert_yaxis()
    ax.set(xlabel="share of final records", xlim=(0, 1))
    _outside_legend(ax)
    return fig


def write(output: str, langs: list[str], preset: str) -> list[dict]:
    """Write ``OUT/report.md`` and ``OUT/plots/*.png``; returns the stats it summarises."""
    stats = [_read_json(f"{output}/stats/{lang}.json") for lang in langs]
    images = plots(stats)
    for name, data in images.items():
        with writing(path := f"{output}/plots/{name}.png"), FileSystems.create(path) as f:
            f.write(data)
    with writing(path := f"{output}/report.md"), FileSystems.create(path) as f:
        f.write(render(stats, preset, list(images)).encode("utf-8"))
    return stats
