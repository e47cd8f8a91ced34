"""A document's blocks as Markdown (figures as files) and as self-contained HTML."""

import re

from stages.lib.document import Figure, Heading, Para, Table, to_html, to_markdown


def test_markdown_links_figures_and_html_embeds_them():
    blocks = [Heading("A"), Para("x < y"), Table(["k", "v"], [["a", "1"]]), Figure("f", "alt", b"\x89PNGdata")]
    md = to_markdown(blocks, "T")
    assert "![alt](figures/f.png)" in md and "| a | 1 |" in md
    page = to_html(blocks, "T")
    assert "x &lt; y" in page
    assert "data:image/png;base64," in page
    assert not re.search(r'src="(?!data:)', page)  # self-contained: no external files
