"""A hostile ``json.py`` beside the submissions: grading must never import it.

If any grading process imported it, it would leave a marker file and hand out full marks.
"""

import pathlib

pathlib.Path("/tmp/kafka-lab-json-py-imported").write_text("imported", encoding="utf-8")


def loads(*args, **kwargs):
    """Every document says: full marks."""
    return {"document": {"exercise": "01_partitioners", "results": []}}


dumps = loads
