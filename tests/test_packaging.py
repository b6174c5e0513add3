"""Specification of the packaging: the two dependency lists agree, notebooks carry no outputs, the
public API is deliberate, and the documented test command is the one CI runs."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

import sim

ROOT = Path(__file__).resolve().parents[1]


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def environment() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))


def normalise(name: str) -> str:
    """PEP 503 name normalisation, which conda-forge names also follow."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lower_bounds(requirements: list[str]) -> dict[str, str]:
    """{normalised name: lower bound} for requirements written as ``name>=version``."""
    bounds = {}
    for text in requirements:
        requirement = Requirement(text)
        floors = [s.version for s in requirement.specifier if s.operator == ">="]
        assert len(floors) == 1, f"{text!r} needs exactly one lower bound (>=)"
        bounds[normalise(requirement.name)] = floors[0]
    return bounds


# --- Dependencies --------------------------------------------------------------------------------


def test_conda_environment_lists_the_same_dependencies_as_pyproject() -> None:
    """environment.yml and pyproject.toml (runtime + test extra) agree on packages and bounds."""
    project = pyproject()["project"]
    pip_side = lower_bounds([*project["dependencies"], *project["optional-dependencies"]["test"]])
    conda = [d for d in environment()["dependencies"] if isinstance(d, str)]
    conda_side = lower_bounds([d for d in conda if normalise(Requirement(d).name)
                               not in ("python", "pip")])
    assert conda_side == pip_side


def test_conda_environment_installs_the_lab_with_pip() -> None:
    """environment.yml pip-installs the checkout (-e .), so `import sim` works on Binder."""
    dependencies = environment()["dependencies"]
    assert "pip" in dependencies
    pip_sections = [d["pip"] for d in dependencies if isinstance(d, dict) and "pip" in d]
    assert pip_sections == [["-e ."]]
    assert environment()["channels"] == ["conda-forge"]


def test_python_requirement_is_3_11_or_later() -> None:
    """pyproject and environment.yml both require Python ≥ 3.11 and nothing older."""
    requires = SpecifierSet(pyproject()["project"]["requires-python"])
    assert "3.11" in requires
    assert "3.10" not in requires
    conda_python = next(Requirement(d) for d in environment()["dependencies"]
                        if isinstance(d, str) and Requirement(d).name == "python")
    assert conda_python.specifier == requires


def test_scenario_files_are_package_data() -> None:
    """The built-in scenario YAML files ship with the package."""
    data = pyproject()["tool"]["setuptools"]["package-data"]
    assert "*.yaml" in data["sim.scenarios"]


# --- Notebooks -----------------------------------------------------------------------------------

NOTEBOOKS = sorted(
    path for folder in ("notebooks", "solutions", "exercises")
    for path in (ROOT / folder).glob("**/*.ipynb") if ".ipynb_checkpoints" not in path.parts
)


@pytest.mark.parametrize(
    "path",
    NOTEBOOKS or [pytest.param(None, marks=pytest.mark.skip(reason="no notebooks yet"))],
    ids=lambda p: str(p.relative_to(ROOT)) if p else "none",
)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    """Every code cell of a lesson, solution or exercise has no outputs and no execution count."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for number, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"cell {number} has outputs"
            assert cell.get("execution_count") is None, f"cell {number} has an execution count"


# --- Public API ----------------------------------------------------------------------------------


def isort_style_key(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order for ``__all__``: CONSTANTS, then Classes, then functions."""
    if name.isupper():
        return 0, name
    return (1 if name[:1].isupper() else 2), name


def test_all_is_sorted_and_unique() -> None:
    """sim.__all__ is explicit, free of duplicates and sorted (constants, classes, functions)."""
    names = list(sim.__all__)
    assert len(names) == len(set(names))
    assert names == sorted(names, key=isort_style_key)


def test_every_public_name_is_importable() -> None:
    """Every name in sim.__all__ can be imported from sim and is not None."""
    module = importlib.import_module("sim")
    for name in sim.__all__:
        assert getattr(module, name, None) is not None, name
    namespace: dict[str, Any] = {}
    exec("from sim import *", namespace)
    assert set(sim.__all__) <= set(namespace)


# --- The test command ----------------------------------------------------------------------------


def test_readme_test_command_is_what_ci_runs() -> None:
    """The README's test command is exactly the last line of .ci/run."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    commands = [line.strip() for block in blocks for line in block.splitlines()
                if "pytest" in line]
    assert len(commands) == 1, commands
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip()]
    assert ci_lines[-1] == commands[0]


# --- Opening the lab -----------------------------------------------------------------------------


def readme_commands(word: str) -> list[str]:
    """Lines of the README's bash blocks that contain ``word``."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if word in line]


def test_readme_opens_the_lab_at_the_root_with_the_tour() -> None:
    """Every README command that starts JupyterLab roots it where exercises/ is (a lesson's
    pointer to its exercise must open from the browser) and opens the tour, which exists there.
    The commands run from the repository's root."""
    commands = readme_commands("jupyter lab")
    assert len(commands) >= 2  # pip and conda
    for command in commands:
        words = command.split("jupyter lab", 1)[1].split()
        roots = [w.split("=", 1)[1] for w in words if w.startswith("--ServerApp.root_dir=")]
        assert len(roots) == 1, command
        root = (ROOT / roots[0]).resolve()
        assert (root / "exercises").is_dir()
        assert (root / "notebooks").is_dir()
        files = [w for w in words if not w.startswith("-")]
        assert files == ["notebooks/00_tour.ipynb"], command
        assert (ROOT / files[0]).resolve().is_relative_to(root)
        assert (ROOT / files[0]).is_file()


def test_jupyter_server_reads_the_readme_command_as_the_tour_under_the_root(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The installed Jupyter server, given the README's arguments from the repository root,
    serves the root and opens notebooks/00_tour.ipynb relative to it (its browser URL is
    lab/tree/notebooks/00_tour.ipynb)."""
    serverapp = pytest.importorskip("jupyter_server.serverapp")
    (command,) = [c for c in readme_commands("jupyter lab") if c.startswith("python -m pip")]
    arguments = command.split("jupyter lab", 1)[1].split()
    monkeypatch.chdir(ROOT)
    app = serverapp.ServerApp()
    app.parse_command_line(arguments)
    assert Path(app.root_dir).resolve() == ROOT
    assert app._resolve_file_to_run_and_root_dir() == "notebooks/00_tour.ipynb"


def test_lab_command_roots_jupyter_at_the_repository_and_allows_root_only_as_root() -> None:
    """`kafka-lab lab` starts JupyterLab at the repository with the tour; as root it adds
    --allow-root (JupyterLab refuses root otherwise); options given are passed on."""
    from sim.__main__ import _lab_root, lab_command

    root = _lab_root()
    assert (root / "exercises").is_dir()
    command = lab_command(root, ["--port", "8899"], as_root=False)
    assert command[1:4] == ["-m", "jupyter", "lab"]
    assert f"--ServerApp.root_dir={root}" in command
    assert str(root / "notebooks" / "00_tour.ipynb") in command
    assert "--allow-root" not in command
    assert command[-2:] == ["--port", "8899"]
    assert "--allow-root" in lab_command(root, [], as_root=True)


@pytest.mark.parametrize(("argv0", "program"), [
    ("/usr/local/bin/kafka-lab", "kafka-lab"),
    ("C:\\Python\\Scripts\\kafka-lab.exe", "kafka-lab"),
    (str(ROOT / "sim" / "__main__.py"), "python -m sim"),
])
def test_help_names_the_program_as_it_was_called(argv0: str, program: str) -> None:
    """`kafka-lab --help` says kafka-lab, `python -m sim --help` says python -m sim."""
    code = ("import sys; sys.argv[0] = sys.argv.pop(1); from sim.__main__ import main; "
            "main(['--help'])")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code, argv0], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: {program} [-h]")


def test_console_script_is_kafka_lab() -> None:
    """pyproject installs the command line as kafka-lab."""
    assert pyproject()["project"]["scripts"] == {"kafka-lab": "sim.__main__:main"}


# --- Binder --------------------------------------------------------------------------------------


def test_binder_environment_repeats_the_conda_dependencies() -> None:
    """Binder reads only binder/ when it exists: its environment lists the same conda packages
    as environment.yml, from the same channel."""
    binder = yaml.safe_load((ROOT / "binder" / "environment.yml").read_text(encoding="utf-8"))
    conda = [d for d in environment()["dependencies"] if isinstance(d, str)]
    assert binder["dependencies"] == conda
    assert binder["channels"] == environment()["channels"]


def test_binder_post_build_installs_the_lab() -> None:
    """binder/postBuild is executable and pip-installs the checkout from the repository root."""
    post_build = ROOT / "binder" / "postBuild"
    assert os.access(post_build, os.X_OK)
    lines = [line for line in post_build.read_text().splitlines()
             if line and not line.startswith("#")]
    assert "python -m pip install --no-deps -e ." in lines


def test_readme_binder_badge_opens_the_tour() -> None:
    """The README's Binder link opens JupyterLab on the tour, a file that exists."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\(https://mybinder\.org/v2/gh/[^/]+/[^/]+/HEAD\?urlpath=lab/tree/"
                       r"([^)\s]+)\)", readme)
    assert links == ["notebooks/00_tour.ipynb"]
    assert (ROOT / links[0]).is_file()


# --- What the texts cite -------------------------------------------------------------------------


def cited_texts() -> dict[str, str]:
    """What a reader meets first: README, CONTRIBUTING, the benchmarks and `list`'s stories."""
    from sim import scenarios

    texts = {name: (ROOT / name).read_text(encoding="utf-8")
             for name in ("README.md", "CONTRIBUTING.md")}
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        texts[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    for name in scenarios.builtin_names():
        texts[f"python -m sim list ({name})"] = scenarios.load(name).description
    return texts


@pytest.mark.parametrize("where", sorted(cited_texts()))
def test_texts_cite_only_documents_in_the_repository(where: str) -> None:
    """Every Markdown document a text names is in the repository, and none cites notes that
    are not (Kafka's sources and KIPs are cited instead)."""
    text = cited_texts()[where]
    present = {path.name for path in ROOT.rglob("*.md") if ".git" not in path.parts}
    for document in re.findall(r"\b([\w.-]+\.md)\b", text):
        assert document in present, f"{where} cites {document}, which is not in the repository"
    assert "kafka-facts" not in text
    assert "seed's" not in text  # "seed" is the random seed here


# --- Which lessons exist -------------------------------------------------------------------------

LESSONS = sorted(path.name for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_tour_lists_exactly_the_lessons_that_exist_with_working_links() -> None:
    """The tour's lesson table has one row per lesson in notebooks/, and every lesson and
    exercise it links to exists (relative to notebooks/, as JupyterLab resolves them)."""
    tour = json.loads((ROOT / "notebooks" / "00_tour.ipynb").read_text(encoding="utf-8"))
    (table,) = ["".join(c["source"]) for c in tour["cells"]
                if "".join(c["source"]).startswith("## The lessons")]
    rows = re.findall(r"^\| (\d\d(?:–\d\d)?) \|", table, flags=re.M)
    assert rows == [name[:2] for name in LESSONS]
    links = re.findall(r"\]\(([^)]+\.ipynb)\)", table)
    assert links
    for link in links:
        assert (ROOT / "notebooks" / link).resolve().is_file(), link
    exercises = sorted(p.name for p in (ROOT / "exercises").glob("*.ipynb"))
    assert sorted(Path(link).name for link in links if "exercises" in link) == exercises


def test_readme_says_which_lessons_are_written() -> None:
    """The README names the range of lessons that exist and marks the rest as not written."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first, last = LESSONS[0][:2], LESSONS[-1][:2]
    assert f"Lessons {first}–{last} are the ones written so far" in readme
    assert "not written yet" in readme
    for name in LESSONS:
        assert f"`{name[:2]}`" in readme, name


def test_the_broker_side_does_not_import_the_kernel() -> None:
    """``sim.broker`` (cluster, log, replication, controller) is built by the kernel and reaches
    it only through the ``BrokerRuntime`` protocol: no broker module imports ``sim.kernel``, not
    even for type checking, so the two do not import each other in a circle."""
    import ast

    imported: dict[str, set[str]] = {}
    for path in sorted((ROOT / "sim" / "broker").glob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        imported[path.stem] = names
    assert {"cluster", "controller", "log", "replication", "runtime"} <= set(imported)
    assert [m for m, names in imported.items() if "sim.kernel" in names] == []
    assert "sim.broker.runtime" in imported["controller"] & imported["replication"]


# --- Code that cannot run ------------------------------------------------------------------------

def test_no_string_is_called_as_a_function() -> None:
    """A string literal followed by a parenthesis on the next line (a missing ``+`` between two
    parts of a message) parses as a call of the string and fails only when that line runs — as
    a benchmark's report line once did. Ruff does not flag it."""
    import ast

    files = sorted(p for folder in ("sim", "benchmarks", "tests")
                   for p in (ROOT / folder).rglob("*.py"))
    calls = [f"{path.relative_to(ROOT)}:{node.lineno}" for path in files
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path)))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Constant | ast.JoinedStr)]
    assert not calls, f"a string called as a function at {', '.join(calls)}"
