"""Solution → exercise notebooks: a pipeline of small, pure notebook transforms.

``solutions/NN_topic.ipynb`` is the only file people edit. Its answer code sits between
nbgrader-style marker lines::

    def partition(self, topic, key, key_bytes, value, value_bytes, cluster):
        ### BEGIN SOLUTION
        return partition_for_key(key_bytes, 8)
        ### END SOLUTION

:data:`TRANSFORMS` turns it into ``exercises/NN_topic.ipynb``: check the tags, replace each solution
region with a stub, give every cell a stable id, clear outputs, add the notes for learners and
maintainers, and stamp the source's name and hash in the notebook metadata. Each transform takes
a notebook and returns a new one.

The exercise opens with the solution's own first cell (its title), then says how to answer; the
note that it is generated — for maintainers — comes last, and the metadata names its source.

**Stubs** keep the unsolved notebook runnable from top to bottom, so its check cells report
"not yet solved" instead of crashing:

- an *indented* region (a function or method body) becomes
  ``raise NotImplementedError("your code here")`` at the markers' indentation, so the class or
  function still defines and only fails when called;
- a *top-level* region becomes ``name = ...  # your answer here`` for each name it binds
  (``alice_partition = ...``), or ``# your code here`` if it binds none.

Nested, unterminated or malformed markers are errors naming the file and the cell. Notebooks are
written with :func:`render` (nbformat's sorted, one-space-indented JSON plus a final newline), so
building twice gives the same bytes and ``check_exercises`` can compare bytes.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from sim.errors import GradingError
from sim.grading.registry import exercise_questions

__all__ = [
    "TRANSFORMS",
    "Source",
    "build_exercises",
    "check_exercises",
    "generate_exercise",
    "render",
]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = 'raise NotImplementedError("your code here")'
ANSWER_NOTE_ID = "kafka-lab-how-to-answer"
GENERATED_NOTE_ID = "kafka-lab-generated"
_MARKER = re.compile(r"^(?P<indent>[ \t]*)###[ \t]*(?P<kind>BEGIN|END) SOLUTION[ \t]*$")
_NEAR_MISS = re.compile(r"(BEGIN|END)[ \t]+SOLUTION", re.IGNORECASE)
_KEPT_NOTEBOOK_METADATA = ("kernelspec", "kafka_lab")
_TRANSIENT_CELL_METADATA = ("execution", "collapsed", "scrolled")


@dataclass(frozen=True)
class Source:
    """The solution a notebook is generated from: its name as shown to people, and its hash."""

    name: str  # "solutions/01_partitioners.ipynb"
    digest: str


Transform = Callable[[NotebookNode, Source], NotebookNode]


def _where(source: Source, number: int, cell: NotebookNode) -> str:
    return f"{source.name}, cell {number} (id {cell.get('id', '?')})"


def check_tags(nb: NotebookNode, source: Source) -> NotebookNode:
    """Require the exercise name in the notebook and a question id on every answer cell."""
    exercise = nb.metadata.get("kafka_lab", {}).get("exercise")
    known = {q.id for q in exercise_questions(exercise)} if isinstance(exercise, str) else set()
    if not known:
        raise GradingError(
            f"{source.name}: notebook metadata kafka_lab.exercise is {exercise!r}, which has no "
            "check module; set it to an exercise such as '01_partitioners'"
        )
    tagged: set[str] = set()
    for number, cell in enumerate(nb.cells, start=1):
        tag = cell.metadata.get("kafka_lab", {}).get("question")
        if tag is not None and tag not in known:
            raise GradingError(
                f"{_where(source, number, cell)}: question {tag!r} is not one of exercise "
                f"{exercise}'s questions ({', '.join(sorted(known))})"
            )
        if tag is not None:
            tagged.add(tag)
        if BEGIN in cell.source and tag is None:
            raise GradingError(
                f"{_where(source, number, cell)}: a cell with a solution region needs "
                'metadata {"kafka_lab": {"question": "NN.x"}}'
            )
    missing = sorted(known - tagged)
    if missing:
        raise GradingError(f"{source.name}: no cell is tagged with question(s) {missing}")
    return nb


def _top_level_stub(region: list[str], where: str) -> list[str]:
    try:
        tree = ast.parse(textwrap.dedent("\n".join(region)))
    except SyntaxError as exc:
        raise GradingError(
            f"{where}: a top-level solution region must be valid Python on its own "
            f"({exc.msg}, line {exc.lineno} of the region)"
        ) from None
    names: list[str] = []
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        for target in targets:
            elements = target.elts if isinstance(target, ast.Tuple | ast.List) else [target]
            names += [e.id for e in elements if isinstance(e, ast.Name)]
    unique = list(dict.fromkeys(names))
    return [f"{name} = ...  # your answer here" for name in unique] or ["# your code here"]


def _stub_source(text: str, where: str) -> str:
    out: list[str] = []
    region: list[str] | None = None
    indent = ""
    for lineno, line in enumerate(text.splitlines(), start=1):
        marker = _MARKER.match(line)
        if marker is None and _NEAR_MISS.search(line):
            raise GradingError(
                f"{where}, line {lineno}: malformed marker {line.strip()!r}; "
                f"write exactly {BEGIN!r} or {END!r} on a line of its own"
            )
        if marker is None:
            if region is None:
                out.append(line)
            else:
                region.append(line)
        elif marker["kind"] == "BEGIN":
            if region is not None:
                raise GradingError(
                    f"{where}, line {lineno}: nested {BEGIN!r}; close the open region with "
                    f"{END!r} first"
                )
            region, indent = [], marker["indent"]
        else:
            if region is None:
                raise GradingError(f"{where}, line {lineno}: {END!r} without a {BEGIN!r}")
            out += [f"{indent}{STUB}"] if indent else _top_level_stub(region, where)
            region = None
    if region is not None:
        raise GradingError(f"{where}: unterminated {BEGIN!r}; add {END!r} after the solution")
    return "\n".join(out)


def replace_solutions(nb: NotebookNode, source: Source) -> NotebookNode:
    """Replace every solution region with its stub (see the module docstring)."""
    nb = copy.deepcopy(nb)
    for number, cell in enumerate(nb.cells, start=1):
        where = _where(source, number, cell)
        if cell.cell_type == "code":
            cell.source = _stub_source(cell.source, where)
        elif _NEAR_MISS.search(cell.source):
            raise GradingError(f"{where}: solution markers are only allowed in code cells")
    return nb


def stable_ids(nb: NotebookNode, source: Source) -> NotebookNode:
    """Give cells without an id a positional one, so output never contains random ids."""
    nb = copy.deepcopy(nb)
    nb.nbformat, nb.nbformat_minor = 4, max(5, nb.get("nbformat_minor", 5))
    for number, cell in enumerate(nb.cells, start=1):
        cell.setdefault("id", f"cell-{number}")
    return nb


def clear_outputs(nb: NotebookNode, source: Source) -> NotebookNode:
    """Drop outputs, execution counts and machine-specific metadata."""
    nb = copy.deepcopy(nb)
    nb.metadata = NotebookNode(
        {k: nb.metadata[k] for k in _KEPT_NOTEBOOK_METADATA if k in nb.metadata}
    )
    for cell in nb.cells:
        for key in _TRANSIENT_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def _note(text: str, cell_id: str) -> NotebookNode:
    cell = nbformat.v4.new_markdown_cell(text)
    cell.id = cell_id
    cell.metadata = NotebookNode({"editable": False, "deletable": False})
    return cell


def add_notes(nb: NotebookNode, source: Source) -> NotebookNode:
    """Say how to answer after the title, and that the notebook is generated at the very end.

    The exercise's first line stays the solution's own; the maintainers' note does not name the
    solution file in the text (the metadata does, see :func:`stamp_source`). Running this again
    replaces the notes instead of stacking them.
    """
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if c.get("id") not in (ANSWER_NOTE_ID, GENERATED_NOTE_ID)]
    answer = _note("> To answer, replace each `raise NotImplementedError(...)` or `...` with your "
                   "code, then run the check cell below it.", ANSWER_NOTE_ID)
    title_cells = 1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0
    nb.cells.insert(title_cells, answer)
    nb.cells.append(_note(
        "---\n*For maintainers:* this notebook is generated by `python -m sim exercises build` "
        "from the notebook named in its metadata (`kafka_lab.generated_from`); edit that one, "
        "since a build overwrites changes made here.", GENERATED_NOTE_ID))
    return nb


def stamp_source(nb: NotebookNode, source: Source) -> NotebookNode:
    """Record which solution, at which hash, the notebook was generated from."""
    nb = copy.deepcopy(nb)
    lab = dict(nb.metadata.get("kafka_lab", {}))
    lab.update(generated_from=source.name, source_sha256=source.digest)
    nb.metadata.kafka_lab = NotebookNode(lab)
    return nb


TRANSFORMS: tuple[Transform, ...] = (
    check_tags,
    replace_solutions,
    stable_ids,
    clear_outputs,
    add_notes,
    stamp_source,
)


def render(nb: NotebookNode) -> str:
    """The notebook as text, byte-stable: nbformat's sorted JSON and a final newline."""
    return nbformat.writes(nb, version=4).rstrip("\n") + "\n"


def solution_digest(nb: NotebookNode) -> str:
    """SHA-256 of the solution's cells and kept metadata; re-running it leaves this unchanged."""
    blank = Source("", "")
    text = render(clear_outputs(stable_ids(nb, blank), blank))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def generate_exercise(solution: NotebookNode, source_name: str) -> NotebookNode:
    """Run :data:`TRANSFORMS` over a solution notebook.

    Raises:
        GradingError: missing tags or malformed markers, naming the file and the cell.
    """
    source = Source(source_name, solution_digest(solution))
    nb = solution
    for transform in TRANSFORMS:
        nb = transform(nb, source)
    return nb


def _generated_text(solution_path: Path) -> str:
    name = f"{solution_path.parent.name}/{solution_path.name}"
    try:
        solution = nbformat.read(solution_path, as_version=4)
    except (nbformat.reader.NotJSONError, ValueError, KeyError) as exc:
        raise GradingError(f"{name}: not a readable notebook ({exc})") from None
    return render(generate_exercise(solution, name))


def build_exercises(solutions_dir: Path, exercises_dir: Path) -> list[Path]:
    """Write ``exercises_dir/X.ipynb`` for every ``solutions_dir/X.ipynb``.

    Files already up to date are left untouched; nothing is written if any solution is
    malformed. Returns every exercise path, in name order.

    Raises:
        GradingError: a solution notebook is malformed (the message names the file and cell).
    """
    solutions_dir, exercises_dir = Path(solutions_dir), Path(exercises_dir)
    generated = {
        exercises_dir / path.name: _generated_text(path)
        for path in sorted(solutions_dir.glob("*.ipynb"))
    }  # all or nothing: one broken solution writes no file
    exercises_dir.mkdir(parents=True, exist_ok=True)
    for target, text in generated.items():
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8", newline="\n")
    return list(generated)


def _first_difference(a: str, b: str) -> int:
    for lineno, (x, y) in enumerate(zip(a.splitlines(), b.splitlines(), strict=False), 1):
        if x != y:
            return lineno
    return min(len(a.splitlines()), len(b.splitlines())) + 1


def check_exercises(solutions_dir: Path, exercises_dir: Path) -> list[str]:
    """Rebuild in memory and compare with ``exercises_dir``; returns one line per problem.

    An empty list means every exercise is exactly what its solution generates. Problems name
    the file: missing, differing (with the first differing line), generated from nothing, or a
    solution that cannot be built.
    """
    solutions_dir, exercises_dir = Path(solutions_dir), Path(exercises_dir)
    fix = "run `python -m sim exercises build`"
    problems = []
    solution_paths = sorted(solutions_dir.glob("*.ipynb"))
    for solution_path in solution_paths:
        target = exercises_dir / solution_path.name
        shown = f"{exercises_dir.name}/{target.name}"
        try:
            text = _generated_text(solution_path)
        except GradingError as exc:
            problems.append(str(exc))
            continue
        if not target.exists():
            problems.append(f"{shown} is missing; {fix}")
            continue
        actual = target.read_text(encoding="utf-8")
        if actual != text:
            line = _first_difference(actual, text)
            problems.append(
                f"{shown} differs from what {solutions_dir.name}/{solution_path.name} "
                f"generates (first difference at line {line}); edit the solution, then {fix}"
            )
    expected = {p.name for p in solution_paths}
    problems += [
        f"{exercises_dir.name}/{stray.name} has no solution in {solutions_dir.name}/; "
        "add the solution or delete the exercise"
        for stray in sorted(exercises_dir.glob("*.ipynb"))
        if stray.name not in expected
    ]
    return problems
