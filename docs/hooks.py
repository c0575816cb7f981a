"""mkdocs hooks: the generated parts of the documentation site.

- ``api/<family>.md``: one page per family of public names, read from ``gradtx/__init__.py``
  at build time (so a new export appears without editing the docs), rendered by mkdocstrings.
  Modules with pages of their own: the integrations, ``gradtx.contrib``,
  ``gradtx.projections``, and ``gradtx.tree`` with ``gradtx.tree_utils`` (the same functions
  under Optax's second set of names).
- ``notebooks/*.ipynb``: the committed notebooks (they carry no outputs), each with a last
  cell showing its committed figures from ``notebooks/figures/``; mkdocs-jupyter renders them
  and executes those not listed in ``execute_ignore`` (the first one).
- ``performance.md``: the ``<!-- results -->`` marker is replaced by the list of reports in
  ``benchmarks/results/`` and the summary table each one printed.
- After the build, checks that every public name has its entry, that Adam's update rule is on
  the optimizers page and that the first notebook shows its figure; a miss fails the build.
"""

from __future__ import annotations

import ast
import html
import json
import logging
import os
import pathlib
import re
import shutil
import tempfile

try:
    from mkdocs.exceptions import PluginError
    from mkdocs.plugins import event_priority
    from mkdocs.structure.files import File
except ImportError:  # tests/test_docs.py imports the helpers below without mkdocs installed
    PluginError = RuntimeError

    def event_priority(priority):
        return lambda fn: fn


ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
RESULTS = ROOT / "benchmarks" / "results"

# (page, title, what it holds, module prefixes of gradtx whose public names belong there).
# The first family whose prefix matches a name's defining module takes it.
FAMILIES = [
    (
        "optimizers",
        "Optimizers",
        "The optimizer factories, their preconditioners (`scale_by_*`) and their states.",
        ("gradtx.optimizers.",),
    ),
    (
        "schedules",
        "Schedules",
        "Schedules are pytrees: `schedule(count) -> value`, their numbers are leaves.",
        ("gradtx.schedules.",),
    ),
    (
        "transforms",
        "Transforms",
        "Building blocks to chain: masks, partitions, clipping, "
        "accumulation, safety, averaging, quantized and stochastically rounded state.",
        ("gradtx.transforms.", "gradtx._mask"),
    ),
    (
        "sweeps",
        "Sweeps",
        "Many hyperparameter settings in one compiled program, and the searches built on it.",
        ("gradtx._sweep.",),
    ),
    (
        "layouts",
        "Layouts, sharding and checkpoints",
        "Packed parameters, the fused step, sharding helpers, mixed precision and checkpoints.",
        (
            "gradtx._layout",
            "gradtx._step",
            "gradtx._sharding",
            "gradtx._precision",
            "gradtx._checkpoint",
            "gradtx._fusion",
        ),
    ),
    (
        "core",
        "Core",
        "The base classes, `chain`, `apply_updates`, field declarations, the errors, the "
        "state utilities (`tree_get`, `tree_set`, `tree_map_params`), Optax's "
        "`GradientTransformation` pair and callable types, and the numerics helpers for "
        "writing transforms. The type aliases `Params`, `Updates`, `OptState` (any pytree), "
        "`ScalarOrSchedule` (a number, an array, a schedule or a callable `count -> value`) "
        "and `MaskOrFn` (a tree of booleans, a function `params -> mask`, or None) are "
        "Optax's, for annotations.",
        (
            "gradtx._transform",
            "gradtx._kernel",
            "gradtx._checks",
            "gradtx._state_utils",
            "gradtx._base",
            "gradtx._numerics",
        ),
    ),
]
# Public names listed on the integrations page, with the modules users import themselves.
INTEGRATION_MODULES = ["gradtx.nnx", "gradtx.optuna", "gradtx.torch", "gradtx.registry"]
CONTRIB_MODULE = "gradtx.contrib"
PROJECTIONS_MODULE = "gradtx.projections"
# Optax's tree namespaces: one page, the functions documented once under ``gradtx.tree``.
TREE_MODULES = ["gradtx.tree", "gradtx.tree_utils"]
# Public names whose docstrings the API pages leave out: type aliases, which have none (the
# core page's text describes them).
EXCLUDED: set[str] = {"MaskOrFn", "OptState", "Params", "ScalarOrSchedule", "Updates"}
# Docstring warnings shown at INFO instead of failing the strict build: (file, message part).
# Google style wants one name per Args entry; these docstrings list several names in one entry
# ("loss_fn, params, data, ...: as in gradtx.sweep"), which still renders as written.
KNOWN_DOCSTRING_WARNINGS = [
    ("gradtx/optuna.py", "Failed to get 'name: description' pair"),
    ("gradtx/_sweep/_halving.py", "Failed to get 'name: description' pair"),
    ("gradtx/_sweep/_pbt.py", "Failed to get 'name: description' pair"),
    ("gradtx/_sweep/_lr_finder.py", "does not appear in the function signature"),
    ("gradtx/optimizers/muon.py", "'ns_a, ns_b, ns_c' does not appear in the function signature"),
]


def public_names() -> list[str]:
    """The names ``gradtx/__init__.py`` re-exports (``from .x import y as y``), in its order."""
    tree = ast.parse((ROOT / "gradtx" / "__init__.py").read_text())
    names = [
        alias.asname
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname == alias.name and not alias.name.startswith("_")
    ]
    return list(dict.fromkeys(names))


def family_of(name: str) -> str:
    """The API page of a public name, from the module that defines it."""
    import gradtx

    obj = getattr(gradtx, name)
    module = getattr(obj, "__name__", "") if isinstance(obj, type(gradtx)) else ""
    module = module or getattr(obj, "__module__", "") or ""
    for page, _, _, prefixes in FAMILIES:
        if module.startswith(prefixes):
            return page
    if module in INTEGRATION_MODULES:
        return "integrations"
    if module == CONTRIB_MODULE:
        return "contrib"
    if module == PROJECTIONS_MODULE:
        return "projections"
    if module in TREE_MODULES:
        return "tree"
    raise ValueError(
        f"docs/hooks.py: gradtx.{name} is defined in {module!r}, which no API family in "
        "FAMILIES covers; add its module to a family"
    )


def _directive(name: str) -> str:
    """The mkdocstrings directive of ``gradtx.<name>``. A ``typing.Protocol`` (a callable type
    such as ``TransformInitFn``) has no ``__init__`` of its own to merge into the class."""
    import gradtx

    if getattr(getattr(gradtx, name), "_is_protocol", False):
        return f"::: gradtx.{name}\n    options:\n      merge_init_into_class: false"
    return f"::: gradtx.{name}"


def api_pages() -> dict[str, str]:
    """Page name -> markdown for every API page."""
    groups: dict[str, list[str]] = {page: [] for page, *_ in FAMILIES}
    for name in public_names():
        if name in EXCLUDED:
            continue
        page = family_of(name)
        if page in ("integrations", "contrib", "projections", "tree"):
            continue  # the module itself is documented there
        groups[page].append(name)
    pages = {}
    for page, title, blurb, _ in FAMILIES:
        body = "\n\n".join(_directive(n) for n in groups[page])
        pages[page] = f"# {title}\n\n{blurb}\n\n{body}\n"
    integ = "\n\n".join(f"::: {m}\n    options:\n      show_submodules: false"
                        for m in INTEGRATION_MODULES)  # fmt: skip
    pages["integrations"] = (
        "# Integrations\n\nModules imported on their own: `gradtx.nnx` (Flax NNX), "
        "`gradtx.optuna` (Optuna studies), `gradtx.torch` (torch.optim's names) and "
        f"`gradtx.registry` (every optimizer and schedule with samples).\n\n{integ}\n"
    )
    pages["contrib"] = (
        "# gradtx.contrib\n\nOptax's `optax.contrib` optimizers with Optax's names, signatures "
        f"and defaults.\n\n::: {CONTRIB_MODULE}\n"
    )
    pages["projections"] = (
        "# gradtx.projections\n\nOptax's `optax.projections`: Euclidean projections onto "
        "balls, spheres, the simplex, boxes and affine sets, for whole pytrees, with Optax's "
        f"names, signatures and defaults.\n\n::: {PROJECTIONS_MODULE}\n"
    )
    pages["tree"] = (
        "# gradtx.tree and gradtx.tree_utils\n\nOptax's `optax.tree` and `optax.tree_utils`: "
        "functions over whole pytrees with Optax's names, signatures and defaults. "
        "`gradtx.tree_utils.tree_<name>` is `gradtx.tree.<name>`.\n\n"
        "::: gradtx.tree\n\n"
        "::: gradtx.tree_utils\n    options:\n      members: false\n"
    )
    return pages


def notebook_with_figures(path: pathlib.Path) -> dict:
    """The notebook with a last markdown cell that shows its committed figures."""
    nb = json.loads(path.read_text())
    figures = sorted((NOTEBOOKS / "figures").glob(f"{path.stem}*.png"))
    if figures:
        lines = ["## Figures\n", "\n", "The figures this notebook saves (`make notebooks` "
                 "writes them to `notebooks/figures/`):\n", "\n"]  # fmt: skip
        lines += [f"![{f.stem}](../figures/{f.name})\n\n" for f in figures]
        nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": lines})
    return nb


_tmp: dict[str, pathlib.Path] = {}


class _KnownWarnings(logging.Filter):
    """Lowers the known docstring warnings to INFO; every other warning still fails the build."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING:
            message = record.getMessage()
            if any(f in message and part in message for f, part in KNOWN_DOCSTRING_WARNINGS):
                record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def on_config(config):
    griffe_logger = logging.getLogger("mkdocs.plugins.griffe")
    if not any(isinstance(f, _KnownWarnings) for f in griffe_logger.filters):
        griffe_logger.addFilter(_KnownWarnings())
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="gradtx-docs-"))
    _tmp["root"] = tmp
    # Notebooks executed at build time write their figures here (not into the repository).
    os.environ["GRADTX_FIGURES"] = str(tmp / "figures")
    os.environ["XLA_FLAGS"] = ""
    return config


@event_priority(100)  # before mkdocs-jupyter and mkdocstrings look at the files
def on_files(files, config):
    tmp = _tmp["root"]
    for page, text in api_pages().items():
        files.append(File.generated(config, f"api/{page}.md", content=text))
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        out = tmp / "notebooks" / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(notebook_with_figures(path), indent=1))
        # A plain File with a source folder: mkdocs-jupyter wraps it and reads its path.
        files.append(File(f"notebooks/{path.name}", str(tmp), config["site_dir"],
                          config["use_directory_urls"]))  # fmt: skip
    for fig in sorted((NOTEBOOKS / "figures").glob("*.png")):
        files.append(File.generated(config, f"notebooks/figures/{fig.name}", abs_src_path=str(fig)))
    return files


def results_markdown() -> str:
    """The reports in benchmarks/results/: one row each, then each report's summary table."""
    rows, summaries = [], []
    for path in sorted(RESULTS.iterdir()):
        if path.name == "notes.md" or path.suffix not in {".md", ".txt", ".log", ".json"}:
            continue
        if path.suffix == ".json" and path.with_suffix(".md").exists():
            continue  # the .md is the same report, rendered
        text = path.read_text(errors="replace")
        machine = next((ln for ln in text.splitlines() if ln.startswith("Machine:")), "")
        machine = machine.removeprefix("Machine: ").split(". Load average")[0]
        rows.append(f"| `{path.name}` | {machine or '-'} |")
        m = re.search(r"^## Summary[^\n]*\n(.*?)(?=^## |\Z)", text, re.S | re.M)
        if m:
            body = "\n".join("    " + ln if ln else "" for ln in m.group(1).strip().splitlines())
            summaries.append(f'??? note "`{path.name}`: summary"\n\n{body}\n')
    table = "| report | machine, versions, date |\n|---|---|\n" + "\n".join(rows)
    return f"{table}\n\n## Summaries, as each report printed them\n\n" + "\n".join(summaries)


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "performance.md":
        if "<!-- results -->" not in markdown:
            raise PluginError("docs/performance.md lost its <!-- results --> marker")
        return markdown.replace("<!-- results -->", results_markdown())
    return markdown


def on_post_build(config):
    site = pathlib.Path(config["site_dir"])
    # Figures written by notebooks executed during this build replace the committed copies.
    fresh = _tmp["root"] / "figures"
    if fresh.is_dir():
        for fig in fresh.glob("*.png"):
            shutil.copyfile(fig, site / "notebooks" / "figures" / fig.name)
    api = "".join(p.read_text() for p in sorted((site / "api").glob("*/index.html")))
    missing = [n for n in public_names() if n not in EXCLUDED and f'id="gradtx.{n}"' not in api]
    if missing:
        raise PluginError(f"the API pages have no entry for: {missing}")
    optimizers = html.unescape((site / "api" / "optimizers" / "index.html").read_text())
    if "m_t = b1 * m_{t-1} + (1 - b1) * g_t" not in optimizers:
        raise PluginError("the optimizers page does not show Adam's update rule")
    first = sorted(NOTEBOOKS.glob("01_*.ipynb"))[0].stem
    nb_html = (site / "notebooks" / first / "index.html").read_text()
    figure = sorted((NOTEBOOKS / "figures").glob(f"{first}*.png"))[0].name
    if f"../figures/{figure}" not in nb_html or not (site / "notebooks/figures" / figure).exists():
        raise PluginError(f"the {first} notebook page does not show {figure}")
    if "jp-OutputArea-output" not in nb_html:
        raise PluginError(f"the {first} notebook page has no outputs: was it executed?")
    shutil.rmtree(_tmp["root"], ignore_errors=True)
