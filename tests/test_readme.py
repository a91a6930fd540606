"""Every figure the README quotes from a recorded run appears in the file it cites.

A README block that reports results starts with a comment naming its sources,
`<!-- figures: results/reference/demo/table.md results/reference/demo/run.json -->`, and
runs to the next such comment or heading. Its iteration counts (140,000), percentages with
decimals (98.88%) and durations (10.8 minutes) must each be found in one of those files, so
the prose cannot drift from the runs it describes.
"""
import os
import re

from conftest import ROOT

MARKER = re.compile(r"<!-- figures: (.*?) -->")
FIGURE = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+|\d+\.\d+%|\d+(?:\.\d+)? minutes)")


def blocks(text):
    """(sources, block text) for every marked block of a markdown text."""
    out = []
    for m in MARKER.finditer(text):
        rest = text[m.end():]
        end = min([len(rest)] + [k.start() for k in (MARKER.search(rest), re.search(r"^#", rest, re.M)) if k])
        out.append((m.group(1).split(), rest[:end]))
    return out


def figures(block):
    return [f.replace(" minutes", "") for f in FIGURE.findall(block)]


def test_block_and_figure_extraction():
    text = ("intro 1,234\n<!-- figures: a.md -->\nreached 140,000 at 98.88% in 10.8 minutes, 2.0× "
            "sooner\n## next\n99.00% not checked")
    assert blocks(text) == [(["a.md"], "\nreached 140,000 at 98.88% in 10.8 minutes, 2.0× sooner\n")]
    assert figures(blocks(text)[0][1]) == ["140,000", "98.88%", "10.8"]


def test_readme_figures_appear_in_the_recorded_runs_they_cite():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    marked = blocks(text)
    assert marked, "the README's results sections must name their sources"
    for sources, block in marked:
        recorded = ""
        for source in sources:
            path = os.path.join(ROOT, source)
            assert os.path.isfile(path), f"README cites {source}, which is not committed"
            recorded += open(path, encoding="utf-8").read()
        found = figures(block)
        assert found, f"a block citing {sources} quotes no figure"
        missing = [f for f in found if f not in recorded]
        assert not missing, f"README figures {missing} are not in {sources}"
