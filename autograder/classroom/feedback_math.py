"""Math in nbgrader's feedback pages as MathML, which browsers draw themselves, offline.

nbconvert's pages load MathJax from a CDN to typeset ``$...$``; a student who opens the feedback offline
(or behind a firewall) sees raw ``$\\hat{y}$``. ``MathAsMathML`` (a GenerateFeedback preprocessor, see
nbgrader_config.py) turns the math of every markdown cell into MathML instead; the feedback template loads
no MathJax. Code spans, fenced code and ``\\$`` are left as they are; math that latex2mathml cannot read
stays as it was written.
"""
import re

from nbgrader.preprocessors import NbGraderPreprocessor

# Code first (kept), then display math, then inline math; a backslash-escaped dollar is no delimiter.
PIECES = re.compile(
    r"(?P<fence>^(?P<ticks>```|~~~)[^\n]*\n.*?^(?P=ticks)[ \t]*$)"
    r"|(?P<code>(?P<run>`+).+?(?P=run))"
    r"|\$\$(?P<display>.+?)\$\$"
    r"|(?<![\\$])\$(?P<inline>[^\s$](?:[^$\n]|\\\$)*?)(?<![\\\s])\$(?!\d)",
    re.S | re.M)


def as_mathml(latex, display):
    """MathML for ``latex`` ("inline" or "block"), on one line; None where latex2mathml cannot read it."""
    from latex2mathml.converter import convert

    try:
        return convert(latex.strip(), display=display).replace("\n", "")
    except Exception:  # any reading error: the math stays as written
        return None


def markdown_with_mathml(text):
    """``text`` (markdown) with each ``$...$`` and ``$$...$$`` outside code replaced by MathML."""
    def replace(match):
        if match.group("fence") or match.group("code"):
            return match.group(0)
        display = match.group("display") is not None
        mathml = as_mathml(match.group("display") if display else match.group("inline"),
                           "block" if display else "inline")
        return match.group(0) if mathml is None else mathml
    return PIECES.sub(replace, text)


class MathAsMathML(NbGraderPreprocessor):
    """Markdown cells' math as MathML (feedback pages that need no MathJax)."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown":
            cell.source = markdown_with_mathml(cell.source)
        return cell, resources
