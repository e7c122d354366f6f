"""`python -m workbook_grader.nbgrader_main ARGS`: nbgrader's command line, made cheaper to
start and to run once per student. The grader starts nbgrader once per student (through this
module, or forked from ``nbgrader_server``), so every one-off cost below was paid per student.

* ``skip_slow_imports`` (the grader's own process and the release call it too): importing
  nbgrader pulls in jsonschema, which imports `rfc3987_syntax` when it is installed; that module
  compiles an IRI grammar at import time (about 1.1 of nbgrader's 2.6 s on a 2-core machine).
  Nothing in grading validates IRIs, so the import is blocked and jsonschema simply leaves
  that one string format unchecked.
* ``speed_up``, for a process that autogrades one student (measured per student, 2 cores):
  - one autograde run opens nbgrader's ``Gradebook`` nine times on the student's gradebook,
    and each opening built a new SQLAlchemy engine whose every commit waited for the disk
    (0.07 s). All openings of one URL now share one engine, which does not ask SQLite to sync:
    the gradebook an autograde run writes is the student's scratch copy, read back once the
    run ends. A killed run still leaves a consistent file; only a crash of the whole machine
    could not, and that loses the grading run anyway.
  - nbgrader validates each graded cell's metadata with ``jsonschema.validate``, which checks
    nbgrader's own (constant) schema again on every call (0.12 s). The schema is checked once.
* ``warm_up``, for ``nbgrader_server`` before it forks: SQLAlchemy configures the gradebook's
  mappers on first use (0.16 s per student when each forked child did it) and the metadata
  schema is checked, both once in the server.
"""
import json
import sys


def skip_slow_imports() -> None:
    """Call before importing nbgrader (or nbformat's validator) in any process of ours."""
    sys.modules.setdefault("rfc3987_syntax", None)  # a None entry makes `import` raise ImportError


def _no_sync(connection, _record) -> None:
    connection.execute("PRAGMA synchronous=OFF")


def _share_gradebook_engine(api) -> None:
    from sqlalchemy import create_engine, event

    engines = {}

    def engine_for(url, **options):
        key = (str(url), tuple(sorted(options.items())))
        if key not in engines:
            engine = create_engine(url, **options)
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _no_sync)
            engines[key] = engine
        return engines[key]

    api.create_engine = engine_for


class _SchemaCheckedOnce:
    """Stands in for the ``jsonschema`` module in nbgrader's metadata validator: ``validate``
    does what ``jsonschema.validate`` does, but checks each distinct schema only once."""

    def __init__(self, jsonschema) -> None:
        self._jsonschema = jsonschema
        self._validators: dict[str, object] = {}

    def __getattr__(self, name):
        return getattr(self._jsonschema, name)

    def validator(self, schema):
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            cls = self._jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            self._validators[key] = cls(schema)
        return self._validators[key]

    def validate(self, instance, schema) -> None:
        error = self._jsonschema.exceptions.best_match(self.validator(schema).iter_errors(instance))
        if error is not None:
            raise error


def speed_up() -> None:
    """Call before nbgrader opens anything, in a process that autogrades one student only.
    Written against nbgrader 0.9 (pinned in requirements/); where a newer nbgrader lacks the
    names patched here, that speed-up is left out and nbgrader runs as it ships."""
    skip_slow_imports()
    import nbgrader.api
    from nbgrader.nbgraderformat import common

    if hasattr(nbgrader.api, "create_engine"):
        _share_gradebook_engine(nbgrader.api)
    if hasattr(common, "jsonschema") and not isinstance(common.jsonschema, _SchemaCheckedOnce):
        common.jsonschema = _SchemaCheckedOnce(common.jsonschema)


def warm_up() -> None:
    """After ``speed_up``: do now, once, what nbgrader would otherwise do lazily per process."""
    from nbgrader.nbgraderformat import MetadataValidator, common
    from sqlalchemy.orm import configure_mappers

    configure_mappers()  # the gradebook's mappers, defined by nbgrader.api (imported by speed_up)
    if isinstance(common.jsonschema, _SchemaCheckedOnce):
        common.jsonschema.validator(MetadataValidator().schema)


def main() -> None:
    speed_up()
    from nbgrader.apps.nbgraderapp import main as nbgrader_main

    nbgrader_main()


if __name__ == "__main__":
    main()
