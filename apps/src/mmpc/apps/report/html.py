"""Write the report: Markdown plus one self-contained HTML page (figures embedded as base64 PNG).

``write_report(inputs, out)`` computes every table and figure the inputs allow, writes each
table as CSV and each figure as PNG under ``out``, then ``report.md`` and ``report.html``. The
HTML needs no network and no script: inline CSS, ``data:`` image URIs.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image

from mmpc.apps.report.data import TASK_LABELS, GalleryItem, ReportInputs
from mmpc.apps.report.figures import Figure, all_figures
from mmpc.apps.report.tables import (
    Table,
    bootstrap_frame,
    bootstrap_table,
    cq_tables,
    grpo_before_after_tables,
    grpo_category_tables,
    grpo_notes,
    rec_overall_tables,
    rec_tables,
    simple_table,
    spearman_table,
)
from mmpc.metrics.files import atomic_write_text

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}
.section{border-bottom:2px solid #446;margin-top:2em}
.note{color:#666;font-size:12px;margin-top:-1em}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px;font-size:13px}
.card img{width:150px;height:150px;object-fit:contain;border:1px solid #eee}
.pair{display:flex;gap:8px}.unavail{color:#a33}
figure{margin:1em 0}figure img{max-width:100%}
"""


GRPO_SECTION = "GRPO alignment"
# Reading order: (section heading, table/figure key prefixes in the order shown).
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Content quality (CQBench)", ("cq_completer", "radar", "cq_category")),
    ("Recommendation impact (RecBench)", ("rec_overall", "heatmap", "rec_")),
    ("Which differences are real", ("bootstrap",)),
    ("Content quality vs recommendation impact", ("spearman", "quality_vs_impact")),
    (GRPO_SECTION, ("grpo_i2t", "grpo_category", "grpo_t2i", "grpo_rewards")),
    ("Run accounting", ("counts", "unavailable", "stage_times")),
)


@dataclass
class ReportFiles:
    """Where the report went."""

    markdown: Path
    html: Path
    tables: list[Table]
    figures: list[Figure]


def build_tables(inp: ReportInputs, out: Path) -> list[Table]:
    """Every table the inputs allow, in reading order; the bootstrap CSV is written to ``out``."""
    tables: list[Table | None] = []
    tables += cq_tables(inp, "completer")
    tables += cq_tables(inp, "category")
    tables += rec_overall_tables(inp)
    tables += rec_tables(inp)
    boot = bootstrap_frame(inp)
    if not boot.empty:
        atomic_write_text(out / "bootstrap.csv", boot.to_csv(index=False))
    tables.append(bootstrap_table(inp, boot))
    tables.append(spearman_table(inp))
    tables += grpo_before_after_tables(inp)
    tables += grpo_category_tables(inp)
    tables.append(
        simple_table(inp, "counts", "Completion counts: parse failures and skips", inp.counts)
    )
    if inp.unavailable:
        frame = pd.DataFrame(sorted(inp.unavailable.items()), columns=["Component", "Reason"])
        tables.append(
            simple_table(
                inp,
                "unavailable",
                "Unavailable components",
                frame,
                "not run on this machine; no number is reported for them",
            )
        )
    tables.append(simple_table(inp, "stage_times", "Stage times", inp.stage_times))
    return [t for t in tables if t is not None]


def _png_b64(path: Path, max_side: int | None = None) -> str:
    if max_side is None:
        return base64.b64encode(path.read_bytes()).decode()
    with Image.open(path) as img:
        img = img.convert("RGB")
        img.thumbnail((max_side, max_side))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _md_table(t: Table) -> str:
    frame = (
        t.shown.reset_index()
        if t.shown.index.name or isinstance(t.shown.index, pd.MultiIndex)
        else t.shown
    )
    head = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def _html_table(t: Table) -> str:
    frame = (
        t.shown.reset_index()
        if t.shown.index.name or isinstance(t.shown.index, pd.MultiIndex)
        else t.shown
    )
    return frame.to_html(index=False, escape=True, border=0)


def _gallery_html(items: list[GalleryItem], inp: ReportInputs) -> str:
    cards = []
    for g in items:
        esc = html.escape
        head = (
            f"<b>{esc(g.item_id)}</b> · {esc(g.category)} · {esc(g.completer)} · "
            f"{TASK_LABELS.get(g.task, g.task)}"
        )
        if g.task == "t2i":
            pics = []
            for label, path in (("original", g.original_image), ("generated", g.generated_image)):
                if path is not None and Path(path).exists():
                    pics.append(
                        f"<div><img alt='{label}' src='data:image/png;base64,"
                        f"{_png_b64(Path(path), 256)}'><br>{label}</div>"
                    )
                else:
                    pics.append(f"<div>{label}: missing</div>")
            body = (
                f"<div>title: {esc(g.original_title)}</div><div>prompt: {esc(g.generated)}"
                f"</div><div class='pair'>{''.join(pics)}</div>"
            )
        else:
            pic = ""
            if g.original_image is not None and Path(g.original_image).exists():
                pic = (
                    f"<img alt='cover' src='data:image/png;base64,"
                    f"{_png_b64(Path(g.original_image), 256)}'>"
                )
            body = (
                f"<div class='pair'>{pic}<div><div>original: {esc(g.original_title)}</div>"
                f"<div>generated: {esc(g.generated)}</div></div></div>"
            )
        cards.append(f"<div class='card'>{head}{body}</div>")
    title = html.escape(inp.label("Gallery: original vs generated"))
    return f"<h3 id='gallery'>{title}</h3><div class='gallery'>{''.join(cards)}</div>"


def _gallery_md(items: list[GalleryItem], inp: ReportInputs) -> str:
    lines = [
        f"## {inp.label('Gallery: original vs generated')}",
        "",
        "| item | category | completer | task | original | generated |",
        "|---" * 6 + "|",
    ]
    for g in items:
        orig = g.original_title if g.task == "i2t" else f"{g.original_title} ({g.original_image})"
        gen = g.generated if g.task == "i2t" else f"{g.generated} ({g.generated_image})"
        cells = [g.item_id, g.category, g.completer, TASK_LABELS.get(g.task, g.task), orig, gen]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def write_report(inp: ReportInputs, out: Path) -> ReportFiles:
    """Compute and write every table (CSV), figure (PNG), ``report.md`` and ``report.html``."""
    out.mkdir(parents=True, exist_ok=True)
    tables = build_tables(inp, out)
    for t in tables:
        atomic_write_text(out / f"{t.key}.csv", t.values.to_csv())
    figures = all_figures(inp, out)

    title = inp.label(inp.title)
    md = [f"# {title}", ""]
    if inp.synthetic:
        md += [
            "All numbers below come from a **synthetic** catalogue: they test the pipeline and "
            "say nothing about real products.",
            "",
        ]
    body = [f"<h1>{html.escape(title)}</h1>"]
    if inp.synthetic:
        body.append(
            "<p><b>All numbers below come from a synthetic catalogue</b>: they test the "
            "pipeline and say nothing about real products.</p>"
        )
    placed: set[str] = set()
    for heading, prefixes in SECTIONS:
        items: list[Table | Figure] = []
        for prefix in prefixes:
            for x in [*tables, *figures]:
                if x.key.startswith(prefix) and x.key not in placed:
                    items.append(x)
                    placed.add(x.key)
        notes = grpo_notes(inp) if heading == GRPO_SECTION else []
        if not items and not notes:
            continue
        md += [f"## {heading}", ""]
        body.append(f"<h2 class='section'>{html.escape(heading)}</h2>")
        for line in notes:
            md += [line, ""]
            body.append(f"<p>{html.escape(line)}</p>")
        for x in items:
            if isinstance(x, Table):
                md += [f"### {x.title}", "", _md_table(x), ""]
                body.append(f"<h3 id='{html.escape(x.key)}'>{html.escape(x.title)}</h3>")
                body.append(_html_table(x))
                if x.note:
                    md += [f"*{x.note}*", ""]
                    body.append(f"<p class='note'>{html.escape(x.note)}</p>")
            else:
                md += [f"### {x.title}", "", f"![{x.title}]({x.path.name})", ""]
                body.append(
                    f"<figure id='{html.escape(x.key)}'><figcaption><b>{html.escape(x.title)}"
                    f"</b></figcaption><img alt='{html.escape(x.title)}' "
                    f"src='data:image/png;base64,{_png_b64(x.path)}'></figure>"
                )
    if inp.gallery:
        md += ["## Gallery", "", _gallery_md(inp.gallery, inp), ""]
        body.append("<h2 class='section'>Gallery</h2>" + _gallery_html(inp.gallery, inp))
    md_path, html_path = out / "report.md", out / "report.html"
    atomic_write_text(md_path, "\n".join(md))
    page = (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
    atomic_write_text(html_path, page)
    return ReportFiles(md_path, html_path, tables, figures)
