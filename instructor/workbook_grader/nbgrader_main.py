"""`python -m workbook_grader.nbgrader_main ARGS`: nbgrader's command line, started
about a second faster (``skip_slow_imports``, which the grader's own process and the
release use too: on a busy 2-core machine the grammar alone took 5 s).

The grader starts one nbgrader process per student, so start-up cost is paid per student.
Importing nbgrader pulls in jsonschema, which imports `rfc3987_syntax` when it is installed;
that module compiles an IRI grammar at import time (about 1.1 of nbgrader's 2.6 s on a 2-core
machine). Nothing in grading validates IRIs, so the import is blocked and jsonschema simply
leaves that one string format unchecked.
"""
import sys


def skip_slow_imports() -> None:
    """Call before importing nbgrader (or nbformat's validator) in any process of ours."""
    sys.modules.setdefault("rfc3987_syntax", None)  # a None entry makes `import` raise ImportError


def main() -> None:
    skip_slow_imports()
    from nbgrader.apps.nbgraderapp import main as nbgrader_main

    nbgrader_main()


if __name__ == "__main__":
    main()
