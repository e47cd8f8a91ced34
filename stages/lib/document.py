"""A document as a list of blocks, rendered twice: to Markdown (figures as files beside it) and to
self-contained HTML (figures embedded), so the two never drift apart."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass


@dataclass
class Heading:
    text: str


@dataclass
class Para:
    text: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Figure:
    name: str
    alt: str
    png: bytes


Block = Heading | Para | Table | Figure


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines, the first column left-aligned and the others right-aligned."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """The table as aligned columns of plain text, for a terminal."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def to_markdown(blocks: list[Block], title: str, figures: str = "figures") -> str:
    """Markdown, each figure linked as `<figures>/<name>.png`."""
    out = [f"# {title}", ""]
    for b in blocks:
        if isinstance(b, Heading):
            out += [f"## {b.text}", ""]
        elif isinstance(b, Para):
            out += [b.text, ""]
        elif isinstance(b, Table):
            out += [*markdown_table(b.header, b.rows), ""]
        else:
            out += [f"![{b.alt}]({figures}/{b.name}.png)", ""]
    return "\n".join(out)


def to_html(blocks: list[Block], title: str) -> str:
    body = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h2>{html.escape(b.text)}</h2>")
        elif isinstance(b, Para):
            body.append(f"<p>{html.escape(b.text)}</p>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in b.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        else:
            data = base64.b64encode(b.png).decode()
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(b.alt)}"></figure>')
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1f2328}"
        "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #d0d7de;padding:4px 10px}"
        "td:not(:first-child){text-align:right;font-variant-numeric:tabular-nums}th{background:#f6f8fa}"
        "img{max-width:100%}figure{margin:1em 0}"
    )
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head>\n<body><h1>{html.escape(title)}</h1>\n" + "\n".join(body) + "\n</body></html>\n"
    )
