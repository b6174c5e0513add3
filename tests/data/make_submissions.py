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
}


def main() -> None:
    """Write every fixture next to this script's ``submissions/`` folder."""
    OUT.mkdir(exist_ok=True)
    for name, answers in FIXTURES.items():
        nb = nbformat.read(EXERCISE, as_version=4)
        for cell in nb.cells:
            if cell.get("id") in answers:
                cell.source = answers[cell.id]
        (OUT / f"{name}.ipynb").write_text(
            nbformat.writes(nb).rstrip("\n") + "\n", encoding="utf-8", newline="\n"
        )
    solved = (OUT / "solved.ipynb").read_text(encoding="utf-8")
    (OUT / "not_json.ipynb").write_text(solved[:400], encoding="utf-8", newline="\n")


if __name__ == "__main__":
    main()
