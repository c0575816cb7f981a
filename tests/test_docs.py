"""The documentation's sources: every public name has an API page, the nav points at pages
that exist, the performance page lists every report, and quoted figures are in their reports.

The site itself is built by ``make docs`` (mkdocs --strict), whose hook also checks the built
pages; these tests need neither mkdocs nor a build.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re

import pytest

import gradtx

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RESULTS = ROOT / "benchmarks" / "results"


def _hooks():
    spec = importlib.util.spec_from_file_location("gradtx_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _hooks()


def test_public_names_are_the_exports():
    names = hooks.public_names()
    assert len(names) == len(set(names))
    exported = {n for n, v in vars(gradtx).items() if not n.startswith("_")}
    # The re-exports are what the package exposes, besides its subpackages and modules.
    submodules = {n for n in exported if isinstance(getattr(gradtx, n), type(gradtx))}
    assert exported - submodules == set(names) - submodules
    expected = {"adam", "AdamState", "sweep", "warmup_cosine_decay_schedule", "chain", "flatten"}
    assert expected <= set(names)


def test_every_public_name_is_on_exactly_one_api_page():
    pages = hooks.api_pages()
    assert set(pages) >= {"optimizers", "schedules", "transforms", "sweeps", "integrations"}
    for name in hooks.public_names():
        directive = f"::: gradtx.{name}\n"
        holders = [p for p, text in pages.items() if directive in text]
        assert len(holders) == (0 if name in hooks.EXCLUDED else 1), (name, holders)
    for name in hooks.EXCLUDED:  # type aliases: the core page's text names each
        assert f"`{name}`" in pages["core"], name
    assert "::: gradtx.adam\n" in pages["optimizers"]
    assert "::: gradtx.cosine_decay_schedule\n" in pages["schedules"]
    assert "::: gradtx.sweep\n" in pages["sweeps"]
    assert "::: gradtx.nnx\n" in pages["integrations"]


@pytest.mark.parametrize("family", ["schedules", "transforms"])
def test_namespaces_list_their_whole_family(family):
    """``gradtx.schedules`` and ``gradtx.transforms`` hold every public name of their API page
    (and Optax's names of that namespace, tests/test_optax_api.py): a new export cannot be left
    out of them."""
    namespace = getattr(gradtx, family)
    on_page = {
        n for n in hooks.public_names() if n not in hooks.EXCLUDED and hooks.family_of(n) == family
    }
    assert on_page and on_page <= set(namespace.NAMES), on_page - set(namespace.NAMES)
    for name in namespace.NAMES:
        assert getattr(namespace, name) is getattr(gradtx, name), name


def test_adam_docstring_has_the_update_rule_the_build_checks():
    assert "m_t = b1 * m_{t-1} + (1 - b1) * g_t" in gradtx.adam.__doc__


def test_nav_points_at_pages_that_exist():
    nav = re.findall(
        r"^\s+- (?:[\w ]+: )?(\S+\.(?:md|ipynb))$", (ROOT / "mkdocs.yml").read_text(), re.M
    )
    assert len(nav) >= 20
    generated = {f"api/{p}.md" for p in hooks.api_pages()}
    generated |= {f"notebooks/{p.name}" for p in (ROOT / "notebooks").glob("*.ipynb")}
    for entry in nav:
        assert (DOCS / entry).exists() or entry in generated, entry
    for page in DOCS.glob("*.md"):
        assert page.name in nav, f"docs/{page.name} is not in mkdocs.yml's nav"


def test_notebooks_get_their_committed_figures():
    first = sorted((ROOT / "notebooks").glob("01_*.ipynb"))[0]
    nb = hooks.notebook_with_figures(first)
    shown = "".join(nb["cells"][-1]["source"])
    figures = sorted((ROOT / "notebooks" / "figures").glob(f"{first.stem}*.png"))
    assert figures and all(f"](../figures/{f.name})" in shown for f in figures)


def test_performance_page_lists_every_report():
    text = hooks.results_markdown()
    for path in RESULTS.iterdir():
        if path.name == "notes.md":
            continue
        if path.suffix == ".json" and path.with_suffix(".md").exists():
            continue
        assert f"`{path.name}`" in text, path.name
    summary = (RESULTS / "cpu-transformer-all.md").read_text()
    row = "| adam | transformer | 995 | packed | 28.06 / 49.51 | **0.57x**"
    assert row in summary
    assert row in text


def _quoted_figures(markdown: str):
    """(report file, ratio) for each ratio in a bullet that names a report in backticks."""
    for bullet in re.split(r"\n(?=- )", markdown):
        files = re.findall(r"`([\w.-]+\.md)`", bullet)
        reports = [RESULTS / f for f in files if (RESULTS / f).exists()]
        if len(reports) == 1:
            for ratio in re.findall(r"\b\d+\.\d+x\b", bullet):
                yield reports[0], ratio


def test_quoted_benchmark_figures_are_in_the_named_reports():
    readme = (ROOT / "README.md").read_text()
    performance = (DOCS / "performance.md").read_text()
    quoted = list(_quoted_figures(readme)) + list(_quoted_figures(performance))
    assert len(quoted) >= 10
    for report, ratio in quoted:
        assert ratio in report.read_text(), (report.name, ratio)


def test_docs_name_nothing_outside_the_repository():
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        text = page.read_text()
        assert "../shared" not in text and "SEEDS.md" not in text, page.name
