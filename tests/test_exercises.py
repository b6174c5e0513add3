"""Exercises are generated from solutions: in sync, stubbed correctly, and graded as expected."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from sim.errors import GradingError
from sim.grading import exercise_names, exercise_questions
from sim.grading.batch import grade_submission
from sim.grading.notebooks import (
    ANSWER_NOTE_ID,
    GENERATED_NOTE_ID,
    STUB,
    Source,
    add_notes,
    build_exercises,
    check_exercises,
    check_tags,
    generate_exercise,
    render,
    replace_solutions,
    solution_digest,
)

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
SOURCE = Source("solutions/99_demo.ipynb", "")


def _stub(source: str) -> str:
    """The code cell ``source`` after solution regions are replaced."""
    nb = new_notebook(cells=[new_code_cell(source)])
    return replace_solutions(nb, SOURCE).cells[0].source


def _solution() -> nbformat.NotebookNode:
    return nbformat.read(SOLUTIONS / "01_partitioners.ipynb", as_version=4)


# --- in sync ------------------------------------------------------------------------------------


def test_committed_exercises_match_their_solutions() -> None:
    """Rebuilding exercises/ in memory gives exactly the committed files."""
    assert check_exercises(SOLUTIONS, EXERCISES) == []


def test_every_exercise_with_checks_has_a_solution_and_an_exercise() -> None:
    """Each registered exercise has its solutions/ and exercises/ notebook."""
    for name in exercise_names():
        assert (SOLUTIONS / f"{name}.ipynb").is_file()
        assert (EXERCISES / f"{name}.ipynb").is_file()


def test_build_is_idempotent_and_byte_stable(tmp_path: Path) -> None:
    """Building twice writes the same bytes, equal to the committed exercise."""
    first = {p.name: p.read_bytes() for p in build_exercises(SOLUTIONS, tmp_path)}
    second = {p.name: p.read_bytes() for p in build_exercises(SOLUTIONS, tmp_path)}
    assert first == second
    assert first == {p.name: p.read_bytes() for p in EXERCISES.glob("*.ipynb")}


def test_tampered_exercise_is_detected_and_named(tmp_path: Path) -> None:
    """A hand edit of a generated file is reported with the file's name."""
    shutil.copytree(EXERCISES, tmp_path / "exercises")
    target = tmp_path / "exercises" / "01_partitioners.ipynb"
    target.write_text(target.read_text().replace("your answer here", "42"))
    problems = check_exercises(SOLUTIONS, tmp_path / "exercises")
    assert len(problems) == 1
    assert "01_partitioners.ipynb" in problems[0]
    assert "differs" in problems[0]


def test_missing_and_stray_exercises_are_named(tmp_path: Path) -> None:
    """A missing exercise and an exercise without a solution are both reported by name."""
    folder = tmp_path / "exercises"
    folder.mkdir()
    (folder / "99_orphan.ipynb").write_text("{}")
    problems = check_exercises(SOLUTIONS, folder)
    assert any("01_partitioners.ipynb is missing" in p for p in problems)
    assert any("99_orphan.ipynb has no solution" in p for p in problems)


# --- markers ------------------------------------------------------------------------------------


def test_method_body_region_becomes_raise_at_marker_indentation() -> None:
    """An indented region becomes one raise line, indented like its markers."""
    source = (
        "class P:\n"
        "    def partition(self):\n"
        "        ### BEGIN SOLUTION\n"
        "        return 1\n"
        "        ### END SOLUTION\n"
        "    def close(self):\n"
        "        pass"
    )
    assert _stub(source) == (
        f"class P:\n    def partition(self):\n        {STUB}\n    def close(self):\n        pass"
    )


def test_top_level_region_leaves_its_names_as_ellipsis() -> None:
    """A top-level region becomes `name = ...` for each name it binds, so the cell still runs."""
    source = (
        "### BEGIN SOLUTION\n"
        "a, b = 1, 2\n"
        "alice_partition = a + b\n"
        "class Helper:\n"
        "    pass\n"
        "### END SOLUTION\n"
        "print(alice_partition)"
    )
    assert _stub(source) == (
        "a = ...  # your answer here\n"
        "b = ...  # your answer here\n"
        "alice_partition = ...  # your answer here\n"
        "Helper = ...  # your answer here\n"
        "print(alice_partition)"
    )


def test_top_level_region_binding_nothing_becomes_a_comment() -> None:
    """A region that only calls things leaves a comment behind."""
    assert _stub("### BEGIN SOLUTION\nprint(1)\n### END SOLUTION") == "# your code here"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "nested"),
        ("def f():\n    ### BEGIN SOLUTION\n    return 1", "unterminated"),
        ("x = 1\n### END SOLUTION", "without a"),
        ("## BEGIN SOLUTION\nx = 1\n## END SOLUTION", "malformed marker"),
    ],
)
def test_bad_markers_are_errors_naming_file_and_cell(source: str, message: str) -> None:
    """Nested, unterminated, stray or misspelt markers stop the build with file and cell."""
    nb = new_notebook(cells=[new_markdown_cell("intro"), new_code_cell(source)])
    nb.cells[1].id = "answer-cell"
    with pytest.raises(GradingError, match=message) as info:
        replace_solutions(nb, SOURCE)
    assert "solutions/99_demo.ipynb, cell 2 (id answer-cell)" in str(info.value)


def test_markers_in_markdown_are_errors() -> None:
    """Solution markers only make sense in code cells."""
    nb = new_notebook(cells=[new_markdown_cell("### BEGIN SOLUTION\nsecret\n### END SOLUTION")])
    with pytest.raises(GradingError, match="only allowed in code cells"):
        replace_solutions(nb, SOURCE)


def test_answer_cell_without_question_id_is_rejected() -> None:
    """Every cell with a solution region must say which question it answers."""
    nb = _solution()
    answer = next(c for c in nb.cells if "### BEGIN SOLUTION" in c.source)
    del answer.metadata["kafka_lab"]
    with pytest.raises(GradingError, match="needs metadata"):
        check_tags(nb, SOURCE)


# --- the generated notebook ---------------------------------------------------------------------


def test_notes_are_added_once_and_the_exercise_opens_with_its_title() -> None:
    """The solution's first cell stays first, the how-to-answer note follows it, the
    maintainers' note comes last; adding the notes again replaces them instead of stacking."""
    solution = _solution()
    once = add_notes(solution, SOURCE)
    twice = add_notes(once, SOURCE)
    ids = [c.id for c in twice.cells]
    assert ids.count(ANSWER_NOTE_ID) == ids.count(GENERATED_NOTE_ID) == 1
    assert twice.cells[0].source == solution.cells[0].source
    assert ids[1] == ANSWER_NOTE_ID
    assert ids[-1] == GENERATED_NOTE_ID
    assert "exercises build" in twice.cells[-1].source


@pytest.mark.parametrize("path", sorted(EXERCISES.glob("*.ipynb")), ids=lambda p: p.name)
def test_generated_exercise_names_its_source_only_in_metadata(path: Path) -> None:
    """A learner's first line is the exercise's title, and no visible cell points at the
    solution file; the metadata names it for maintainers."""
    exercise = nbformat.read(path, as_version=4)
    assert exercise.cells[0].source.startswith("# Exercise")
    assert exercise.metadata.kafka_lab.generated_from == f"solutions/{path.name}"
    assert not any("solutions/" in c.source for c in exercise.cells if c.cell_type == "markdown")


def test_outputs_are_cleared_and_the_source_hash_is_stamped() -> None:
    """Outputs and counts go; the stamped hash ignores them, so re-running a solution is fine."""
    solution = _solution()
    clean_digest = solution_digest(solution)
    code = next(c for c in solution.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", text="hello\n")]
    code.execution_count = 3
    solution.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    exercise = generate_exercise(solution, "solutions/01_partitioners.ipynb")
    assert all(c.outputs == [] for c in exercise.cells if c.cell_type == "code")
    assert all(c.execution_count is None for c in exercise.cells if c.cell_type == "code")
    assert "language_info" not in exercise.metadata
    assert exercise.metadata.kafka_lab.source_sha256 == clean_digest == solution_digest(solution)
    committed = (EXERCISES / "01_partitioners.ipynb").read_text(encoding="utf-8")
    assert render(exercise) == committed


def test_exercise_keeps_exercise_and_question_ids() -> None:
    """A submission is recognised by its metadata, whatever its file name."""
    exercise = nbformat.read(EXERCISES / "01_partitioners.ipynb", as_version=4)
    assert exercise.metadata.kafka_lab.exercise == "01_partitioners"
    stubbed = [c for c in exercise.cells if STUB in c.source or "= ...  #" in c.source]
    assert stubbed
    assert {c.metadata.kafka_lab.question for c in stubbed} <= {
        q.id for q in exercise_questions("01_partitioners")
    }
    assert all("SOLUTION" not in c.source for c in exercise.cells[1:])


# --- grading the two sides ----------------------------------------------------------------------


@pytest.mark.parametrize("notebook", sorted(SOLUTIONS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_solutions_score_full_marks(notebook: Path) -> None:
    """Run through the batch grader, every solution earns every point."""
    graded = grade_submission(notebook, timeout_s=60, cell_timeout_s=20)
    assert graded.problem is None
    assert graded.results
    for result in graded.results:
        assert (result.verdict, result.points) == ("passed", result.max_points), str(result)
    assert all(c["status"] == "ok" for c in graded.cells)


@pytest.mark.parametrize("notebook", sorted(EXERCISES.glob("*.ipynb")), ids=lambda p: p.stem)
def test_unsolved_exercises_run_and_report_not_yet_solved(notebook: Path) -> None:
    """The generated exercise runs top to bottom without errors and scores 0, "not yet solved"."""
    graded = grade_submission(notebook, timeout_s=60, cell_timeout_s=20)
    assert graded.problem is None
    assert all(c["status"] == "ok" for c in graded.cells), graded.cells
    assert graded.results
    for result in graded.results:
        assert (result.verdict, result.points) == ("not yet solved", 0), str(result)


def test_unreadable_solution_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    """A solution that is not a notebook is reported by name; build writes no file at all."""
    solutions = tmp_path / "solutions"
    shutil.copytree(SOLUTIONS, solutions)
    (solutions / "99_broken.ipynb").write_text("{not json")
    problems = check_exercises(solutions, tmp_path / "exercises")
    assert any(p.startswith("solutions/99_broken.ipynb: not a readable notebook") for p in problems)
    with pytest.raises(GradingError, match="99_broken"):
        build_exercises(solutions, tmp_path / "exercises")
    assert not (tmp_path / "exercises").exists()
