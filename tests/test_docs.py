"""The documentation's examples are the code the tests run, and its pages cite no developer spec
and narrate no history (dates belong to the findings and performance pages only)."""

import re
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: the pages written for users; docs/findings/ holds committed study records, dated by design
PAGES = [ROOT / "README.md", *DOCS.glob("*.md"), *DOCS.glob("how-to/*.md"), *DOCS.glob("reference/*.md"),
         DOCS / "tutorials" / "tutorial.py"]
DATED = {"results.md", "performance.md"}


def _block_after(text: str, heading: str) -> str:
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)\n```", section, re.DOTALL).group(1)


def test_the_site_example_is_the_class_the_plugin_test_runs():
    doc = _block_after((DOCS / "extending.md").read_text(), "## A site on an existing architecture")
    test = (ROOT / "tests" / "test_plugins.py").read_text()
    lines = test[test.index("    class WithFinalSite(TransformerLM):"):].splitlines()
    body = [lines[0]]
    for line in lines[1:]:  # the class ends at the first line outside its body
        if line.strip() and not line.startswith(" " * 8):
            break
        body.append(line)
    assert doc == textwrap.dedent("\n".join(body).rstrip())


def test_every_included_example_exists():
    for page in DOCS.rglob("*.md"):
        for path in re.findall(r'--8<-- "([^"]+)"', page.read_text()):
            assert (ROOT / path).is_file(), f"{page.name} includes {path}, which does not exist"


def test_pages_cite_no_spec_and_no_issue_numbers():
    for page in PAGES:
        text = page.read_text()
        assert "SPEC" not in text, page
        assert not re.search(r"\bissue \d+", text, re.IGNORECASE), page


def test_only_the_findings_and_performance_pages_carry_dates():
    for page in PAGES:
        if page.name not in DATED:
            assert not re.search(r"\b20\d\d-\d\d-\d\d\b", page.read_text()), page


def test_the_readme_is_short_and_links_into_the_docs():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / link).exists(), link


def test_the_method_page_keeps_its_anchors():
    """Docstrings point at these anchors (docs/method.md#tasks, ...)."""
    text = (DOCS / "method.md").read_text()
    for anchor in ("tasks", "task-variants", "trained", "harder-families", "architectures", "programs",
                   "counterfactual-pairs", "das", "featurizers", "iia", "context-interventions", "controls", "floor",
                   "baselines", "fitted-controls", "cause-isolation", "verdicts", "paper-claims", "analyses"):
        assert "{#" + anchor + "}" in text, anchor
