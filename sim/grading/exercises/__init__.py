"""Check modules, one per exercise: ``exNN_topic.py`` grades ``exercises/NN_topic.ipynb``.

Each module declares ``EXERCISE = "NN_topic"`` and one function per question, marked with
:func:`sim.grading.registry.question`. The registry finds them; nothing needs listing here.

A module whose exercise notebook does not import it declares ``HIDDEN_WHILE_GRADED = True``:
its helpers compute the expected answers, so the grading jail hides it from submissions.
"""
