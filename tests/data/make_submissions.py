"""Regenerate the grading fixtures in ``tests/data/submissions/`` from the generated exercise.

Each fixture is ``exercises/01_partitioners.ipynb`` with its answer cells filled in the way one
kind of student would, so the fixtures follow the exercise when it changes. Run from the
repository root, after ``python -m sim exercises build``::

    python tests/data/make_submissions.py

- ``solved``: correct answers to every question.
- ``half_right``: VIP records go to 0–7, but everyone else is hashed over all 10 partitions;
  the prediction forgets that the topic has 6 partitions.
- ``unsolved``: the exercise as handed out.
- ``loops_forever``: a correct 01.a answer cell that then waits forever.
- ``reads_outside``: correct answers, but the answer cells try to read another student's notebook
  and ``/etc/hostname``.
- ``not_json``: a notebook cut off in the middle (an interrupted upload).

Hostile ones, one or more per attack a grader must withstand (see the README's instructor
section): ``tampers_checks`` (replaces the runner's functions, makes ``Item.fail`` a no-op),
``=forges_pipe`` (writes a forged result on every descriptor; its name starts like a formula),
``subclasses_example`` / ``delegates_example`` (the lab's own VipPartitioner; the grader's own
helper for 01.c), ``links_solution`` / ``gc_sandbox`` (reach the solution notebook),
``kills_parent``, ``overwrites_classmate``, ``fork_bomb`` (as many processes as the limit
allows, held until the whole-run limit while others are graded), ``holds_pipe`` /
``spawns_detached`` (children that would outlive grading; they name themselves
``klab-hostile``), ``eats_memory``,
``floods_pipe``, ``escapes`` (file system and network outside its folder), ``recurses``,
``giant_cell``, ``lying_answers``, and the unreadable ``nbformat_string``, ``deep_json`` and
``huge_int``. ``json.py`` beside them must never be imported.

Beyond that table: ``odd_text`` (an error message with a byte that is not UTF-8, a bidi
override, a newline and 100 kB), ``str_raises`` (a partitioner raising an exception whose
``str()`` raises), ``sleeps_in_calls`` (a partitioner that blocks the jail's alarm and sleeps in
every call the checker makes), ``one_huge_line`` (a forged 12 MB message of empty lists,
which would cost the checker some 300 MB to parse). The file names a student may choose
(links, bytes that are not UTF-8) are made by the tests when they copy the fixtures.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
EXERCISE = ROOT / "exercises" / "01_partitioners.ipynb"
OUT = Path(__file__).resolve().parent / "submissions"

VIP_SOLVED = '''class VipPartitioner:
    """Route VIP customers to partitions 0-7 and everyone else to partitions 8-9."""

    def partition(self, topic, key, key_bytes, value, value_bytes, cluster):
        if key_bytes is None:
            return 8
        if key_bytes.startswith(b"vip-"):
            return partition_for_key(key_bytes, 8)
        return 8 + partition_for_key(key_bytes, 2)'''

VIP_HALF_RIGHT = '''class VipPartitioner:
    """Route VIP customers to partitions 0-7 and everyone else to partitions 8-9."""

    def partition(self, topic, key, key_bytes, value, value_bytes, cluster):
        if key_bytes is None:
            return 9
        if key_bytes.startswith(b"vip-"):
            return partition_for_key(key_bytes, 8)
        return partition_for_key(key_bytes, cluster.partition_count_for_topic(topic))'''

VIP_LOOPS = (
    VIP_SOLVED
    + """


# wait until the cluster is ready
while True:
    pass"""
)

VIP_SNOOPS = (
    """try:
    with open("../solved.ipynb") as f:
        borrowed = f.read()
except OSError:
    borrowed = ""

"""
    + VIP_SOLVED
)

ALICE_SOLVED = 'alice_partition = partition_for_key(b"alice", 6)'
ALICE_WRONG = 'alice_partition = to_positive(murmur2(b"alice")) % 10'
ALICE_SNOOPS = 'host = open("/etc/hostname").read()\n' + ALICE_SOLVED

BATCHES_SOLVED = """from sim import Kernel, Producer, Workload

kernel = Kernel(seed=1, brokers=1)
kernel.cluster.create_topic("clicks", partitions=1)
burst = Workload.generate(kernel.spawn_rng(), "clicks", 1000, rate_per_s=7000, value_bytes=100)
Producer(kernel, {"linger.ms": 5}, workload=burst)
kernel.run()
keyless_batches = kernel.cluster.partition("clicks", 0).log.batch_count"""
BATCHES_SNOOPS = 'answers = open("../solved.ipynb").read()\n' + BATCHES_SOLVED
BATCHES_GUESS = "keyless_batches = 1000 // 149 + 1  # assumes every batch fills up"

# --- hostile submissions: one or more per row of the attack table (issue 13, README) ----------
# An "attack" entry is a new untagged code cell inserted right after the imports cell.

TAMPERS = """import sys

import sim.grading
import sim.grading.checklist as checklist

checklist.Item.fail = lambda self, problem, hint="": None
sim.grading.run_check = lambda *args, **kwargs: None
main = sys.modules["__main__"]
for name in ("grade_question", "run_check", "grade_notebook", "check", "main"):
    setattr(main, name, lambda *args, **kwargs: None)"""
VIP_ZERO = '''class VipPartitioner:
    """Everything to partition 0."""

    def partition(self, topic, key, key_bytes, value, value_bytes, cluster):
        return 0'''

FORGES_PIPE = r"""import json
import os

forged = {
    "ran": {"cells": [], "answers": {"alice_partition": 0, "keyless_batches": 0}},
    "document": {"exercise": "01_partitioners", "results": [
        {"question": q, "points": 1000, "max_points": 1000, "verdict": "passed",
         "reason": '=HYPERLINK("http://example.invalid","all good")'}
        for q in ("01.a", "01.b", "01.c")]},
}
line = (json.dumps(forged) + "\n").encode()
for fd in range(3, 64):
    try:
        os.write(fd, line)
    except OSError:
        pass
os._exit(0)"""

VIP_SUBCLASS = '''from sim.partitioners import VipPartitioner as LabsExample


class VipPartitioner(LabsExample):
    """Route VIP customers to partitions 0-7 and everyone else to partitions 8-9."""'''
VIP_DELEGATES = '''from sim.partitioners import VipPartitioner as LabsExample


class VipPartitioner:
    """Route VIP customers to partitions 0-7 and everyone else to partitions 8-9."""

    def partition(self, topic, key, key_bytes, value, value_bytes, cluster):
        return LabsExample().partition(topic, key, key_bytes, value, value_bytes, cluster)'''
BATCHES_HELPER = """import glob
import importlib.machinery
import os

import sim.grading.exercises

try:
    from sim.grading.exercises.ex01_partitioners import keyless_burst_batches
except ImportError:  # hidden? then its compiled copy
    folder = os.path.join(os.path.dirname(sim.grading.exercises.__file__), "__pycache__")
    for path in glob.glob(os.path.join(folder, "ex01_partitioners*.pyc")):
        module = importlib.machinery.SourcelessFileLoader("ex01", path).load_module()
        keyless_burst_batches = module.keyless_burst_batches

keyless_batches = keyless_burst_batches()"""

FIND_SOLUTION = """import json
import os

import sim

repository = os.path.dirname(os.path.dirname(os.path.abspath(sim.__file__)))
candidates = [os.path.join(repository, "solutions", "01_partitioners.ipynb"),
              "/work/main/solutions/01_partitioners.ipynb"]


def solution_class(text):
    for cell in json.loads(text)["cells"]:
        source = "".join(cell["source"])
        if source.startswith("class VipPartitioner"):
            return source
    return ""


"""
LINKS_SOLUTION = FIND_SOLUTION + """for path in candidates:
    try:
        os.link(path, "borrowed.ipynb")
    except OSError:
        continue
    with open("borrowed.ipynb") as f:
        exec(solution_class(f.read()))
    break"""
GC_SANDBOX = FIND_SOLUTION + """import gc

for obj in gc.get_objects():
    if type(obj).__name__ in ("Sandbox", "_Server", "Jail", "Link"):
        for name in ("disable", "finish"):
            try:
                getattr(obj, name)()
            except Exception:
                pass
for path in candidates:
    try:
        with open(path) as f:
            exec(solution_class(f.read()))
        break
    except OSError:
        continue"""

KILLS_PARENT = "import os\n\nos.kill(os.getppid(), 9)"

OVERWRITES_CLASSMATE = """import glob
import os

for base in ("..", "../..", "/tmp"):
    for path in glob.glob(os.path.join(base, "**", "solved.ipynb"), recursive=True)[:20]:
        try:
            with open("blank.ipynb", "w") as f:
                f.write("{}")
            os.replace("blank.ipynb", path)
        except OSError:
            pass"""

HOLDS_PIPE = """import ctypes
import os
import time

if os.fork() == 0:
    os.setsid()
    ctypes.CDLL(None).prctl(15, b"klab-hostile", 0, 0, 0)
    time.sleep(600)
os._exit(0)"""

SPAWNS_DETACHED = """import ctypes
import subprocess
import sys

code = ("import ctypes, time; ctypes.CDLL(None).prctl(15, b'klab-hostile', 0, 0, 0); "
        "time.sleep(600)")
for _ in range(5):
    subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
ctypes.CDLL(None).system(f'setsid {sys.executable} -c "{code}" &'.encode())"""

FORK_BOMB = """import os
import signal
import time

for _ in range(500):
    try:
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
    except OSError:
        break
signal.signal(signal.SIGALRM, signal.SIG_IGN)
time.sleep(600)  # holds every process it could make until the whole-run limit"""

EATS_MEMORY = "hog = bytearray(8 << 30)\n\n" + VIP_SOLVED

FLOODS_PIPE = """import os
import stat

chunk = b"x" * (1 << 20)
for fd in range(3, 64):
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            continue
        for _ in range(40):
            os.write(fd, chunk)
    except OSError:
        pass"""

ESCAPES = """import os
import socket

canary = "/tmp/kafka-lab-canary"
for attempt in (lambda: os.listdir(canary), lambda: os.mkdir(canary + "/made"),
                lambda: os.symlink("/etc/passwd", canary + "/link"),
                lambda: os.rename(canary + "/file", canary + "/moved")):
    try:
        attempt()
    except OSError:
        pass
try:
    with socket.create_connection(("127.0.0.1", 47831), timeout=2) as s:
        s.sendall(b"escaped")
except OSError:
    pass"""

RECURSES = """import sys

sys.setrecursionlimit(100_000)


def down(n):
    return down(n + 1) + 1


down(0)"""

GIANT_CELL = "giant = " + "1+" * 100_000 + "1"  # 200 kB: too deep for the compiler

ALICE_LIES = '''class Liar(int):
    """Equal to anything."""

    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


alice_partition = Liar(0)'''
BATCHES_LOOP = "keyless_batches = []\nkeyless_batches.append(keyless_batches)"

# --- attacks beyond the table -------------------------------------------------------------

ODD_TEXT = r"""raise ValueError("\udcff\u202e=HYPERLINK(1)\n" + "y" * 100_000)
""" + ALICE_SOLVED  # a lone surrogate (not UTF-8), a bidi override, a newline, 100 kB

VIP_STR_RAISES = '''class UnprintableError(Exception):
    """An exception that cannot be described."""

    def __str__(self):
        raise RuntimeError("no description")


class VipPartitioner:
    """Raises an exception whose str() raises."""

    def partition(self, topic, key, key_bytes, value, value_bytes, cluster):
        raise UnprintableError()'''

VIP_SLEEPS = '''import signal
import time


class VipPartitioner:
    """Blocks the jail's alarm, then sleeps in every call the checker makes."""

    def partition(self, topic, key, key_bytes, value, value_bytes, cluster):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(3)
        return 8'''

ONE_HUGE_LINE = """import os
import stat

line = b'{"ran":{"cells":[],"answers":{"alice_partition":[' + b"[]," * 4_000_000 + b"[]]}}}\\n"
for fd in range(3, 64):
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
    except OSError:
        pass
os._exit(0)"""

SOLVED = {"q01a-answer": VIP_SOLVED, "q01b-answer": ALICE_SOLVED, "q01c-answer": BATCHES_SOLVED}

FIXTURES = {
    "solved": {"q01a-answer": VIP_SOLVED, "q01b-answer": ALICE_SOLVED,
               "q01c-answer": BATCHES_SOLVED},
    "half_right": {"q01a-answer": VIP_HALF_RIGHT, "q01b-answer": ALICE_WRONG,
                   "q01c-answer": BATCHES_SOLVED},
    "unsolved": {},
    "loops_forever": {"q01a-answer": VIP_LOOPS, "q01b-answer": ALICE_SOLVED,
                      "q01c-answer": BATCHES_GUESS},
    "reads_outside": {"q01a-answer": VIP_SNOOPS, "q01b-answer": ALICE_SNOOPS,
                      "q01c-answer": BATCHES_SNOOPS},
    "tampers_checks": {"attack": TAMPERS, "q01a-answer": VIP_ZERO},
    "=forges_pipe": {"attack": FORGES_PIPE},
    "subclasses_example": {"q01a-answer": VIP_SUBCLASS, "q01b-answer": ALICE_SOLVED,
                           "q01c-answer": BATCHES_HELPER},
    "delegates_example": {"q01a-answer": VIP_DELEGATES},
    "links_solution": {"attack": LINKS_SOLUTION},
    "gc_sandbox": {"attack": GC_SANDBOX},
    "kills_parent": {**SOLVED, "attack": KILLS_PARENT},
    "overwrites_classmate": {"attack": OVERWRITES_CLASSMATE},
    "holds_pipe": {**SOLVED, "attack": HOLDS_PIPE},
    "spawns_detached": {**SOLVED, "attack": SPAWNS_DETACHED},
    "fork_bomb": {**SOLVED, "attack": FORK_BOMB},
    "eats_memory": {**SOLVED, "q01a-answer": EATS_MEMORY},
    "floods_pipe": {**SOLVED, "attack": FLOODS_PIPE},
    "escapes": {**SOLVED, "attack": ESCAPES},
    "recurses": {**SOLVED, "q01b-answer": RECURSES + "\n" + ALICE_SOLVED},
    "lying_answers": {"q01b-answer": ALICE_LIES, "q01c-answer": BATCHES_LOOP},
    "giant_cell": {**SOLVED, "q01b-answer": GIANT_CELL + "\n" + ALICE_SOLVED},
    "odd_text": {**SOLVED, "q01b-answer": ODD_TEXT},
    "str_raises": {**SOLVED, "q01a-answer": VIP_STR_RAISES},
    "sleeps_in_calls": {**SOLVED, "q01a-answer": VIP_SLEEPS},
    "one_huge_line": {"attack": ONE_HUGE_LINE},
}
"""Each fixture: cell id → new source; ``attack`` is a new untagged cell after the imports."""

MALFORMED = {
    "nbformat_string": lambda solved: solved.replace('"nbformat": 4', '"nbformat": "4"'),
    "deep_json": lambda solved: '{"cells": [], "x": ' + "[" * 200_000 + "]" * 200_000 + "}",
    "huge_int": lambda solved: solved.replace('"nbformat": 4', '"nbformat": ' + "9" * 5000),
}
"""Files no grader can read as a notebook, made from the solved one."""


def main() -> None:
    """Write every fixture next to this script's ``submissions/`` folder."""
    OUT.mkdir(exist_ok=True)
    for name, answers in FIXTURES.items():
        nb = nbformat.read(EXERCISE, as_version=4)
        for cell in nb.cells:
            if cell.get("id") in answers:
                cell.source = answers[cell.id]
        if "attack" in answers:
            at = next(n for n, c in enumerate(nb.cells) if c.get("id") == "imports") + 1
            attack = nbformat.v4.new_code_cell(answers["attack"])
            attack.id = "attack"
            nb.cells.insert(at, attack)
        (OUT / f"{name}.ipynb").write_text(
            nbformat.writes(nb).rstrip("\n") + "\n", encoding="utf-8", newline="\n"
        )
    solved = (OUT / "solved.ipynb").read_text(encoding="utf-8")
    (OUT / "not_json.ipynb").write_text(solved[:400], encoding="utf-8", newline="\n")
    for name, make in MALFORMED.items():
        (OUT / f"{name}.ipynb").write_text(make(solved), encoding="utf-8", newline="\n")


if __name__ == "__main__":
    main()
