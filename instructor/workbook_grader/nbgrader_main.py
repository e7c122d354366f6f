"""`python -m workbook_grader.nbgrader_main ARGS`: nbgrader's command line, started
about a second faster.

The grader starts one nbgrader process per student, so start-up cost is paid per student.
Importing nbgrader pulls in jsonschema, which imports `rfc3987_syntax` when it is installed;
that module compiles an IRI grammar at import time (about 1.1 of nbgrader's 2.6 s on a 2-core
machine). Nothing in grading validates IRIs, so the import is blocked and jsonschema simply
leaves that one string format unchecked.
"""
import sys


def main() -> None:
    sys.modules.setdefault("rfc3987_syntax", None)  # a None entry makes `import` raise ImportError
    from nbgrader.apps.nbgraderapp import main as nbgrader_main

    nbgrader_main()


if __name__ == "__main__":
    main()
