"""The grader: ``workbook grade`` turns a class's submitted notebooks into scores and feedback.

A submission is untrusted code. One student's path through the grader goes down these stages,
each a module that takes the previous stage's result and returns its own (pipeline.py runs
them in this order and never goes back):

1. ``submissions`` find every ``SUBMISSIONS/<student>/<assignment>/*.ipynb``
2. ``masters``     once per assignment: the grade cells, hidden tests and locked cells
3. ``inspect``     read each notebook statically: unreadable, deleted or edited test cells
4. ``canaries``    plant an integrity check before every test cell
5. ``execute``     run stock ``nbgrader autograde`` with the kernel in a sandbox (``sandbox/``)
6. ``read_back``   what nbgrader recorded: points, failure messages, problems, canary verdicts
7. ``score``       the student's result: points per test, zeroed tests, reasons, notes
8. ``report``      once per class: grades.csv, cells.csv, feedback pages, a summary table;
   ``gradebook``  the class's nbgrader gradebook

With ``--dask``, ``remote`` carries one student's stages 3-7 to a Dask worker and back.

docs/GRADING.md describes the behaviour and docs/THREAT-MODEL.md what a cheating student
can and cannot do.
"""
