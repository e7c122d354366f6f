"""nbgrader made cheaper per student (``nbgrader_main.speed_up``/``warm_up``) must still do what
stock nbgrader does: reject bad cell metadata with jsonschema's own error, and write a gradebook
that reads back the same. Run in a fresh interpreter so that this test process stays stock."""
import subprocess
import sys
import textwrap

from conftest import COURSE

SCRIPT = textwrap.dedent('''
    import sys
    from workbook_grader.nbgrader_main import speed_up, warm_up
    speed_up()
    warm_up()
    from nbformat.notebooknode import from_dict
    from nbgrader.api import Gradebook
    from nbgrader.nbgraderformat import MetadataValidator, ValidationError

    meta = {"schema_version": 3, "grade": True, "solution": False, "locked": True,
            "points": 2, "grade_id": "t1"}
    cell = from_dict({"cell_type": "code", "metadata": {"nbgrader": meta}, "source": "",
                      "outputs": [], "execution_count": None})
    validator = MetadataValidator()
    validator.validate_cell(cell)  # valid: no error
    cell.metadata.nbgrader.points = "two"
    try:
        validator.validate_cell(cell)
        print("bad metadata accepted")
    except ValidationError as error:
        print("rejected:", error.message)

    url = "sqlite:///" + sys.argv[1]
    with Gradebook(url) as one:
        one.add_assignment("a1")
        one.add_student("s1")
        engine = one.engine
    with Gradebook(url) as two:
        print("same engine:", two.engine is engine)
        with two.engine.connect() as connection:
            sync = connection.exec_driver_sql("PRAGMA synchronous").scalar()
        print("synchronous:", sync)
        print("read back:", [a.name for a in two.assignments], [s.id for s in two.students])
    with Gradebook("sqlite:///" + sys.argv[1] + "2") as other:
        print("other url, other engine:", other.engine is not engine)
''')


def test_speedups_keep_nbgraders_behaviour(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "gradebook.db")],
                          env=COURSE.nbgrader_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "rejected: 'two' is not of type 'number'" in lines, (
        "nbgrader's metadata check no longer rejects bad points with jsonschema's message; "
        "check _SchemaCheckedOnce.validate against jsonschema.validate:\n" + done.stdout)
    assert "same engine: True" in lines, "each Gradebook opening built its own engine again"
    assert "synchronous: 0" in lines, "the scratch gradebook's engine syncs to disk again"
    assert "read back: ['a1'] ['s1']" in lines, "the gradebook did not read back what was written"
    assert "other url, other engine: True" in lines, "two gradebooks shared one engine"
