"""The course: every path and setting comes from its one ``nbgrader_config.py``.

A ``Course`` is the checkout an instructor works in. Where the sources, the release and a class's
submissions live (nbgrader's ``CourseDirectory``), the cell timeout (``Execute.timeout``) and
what the grader preloads (``GradingSandbox.preload`` and ``preload_for``) are read from that
file, which stock nbgrader reads too; nothing else holds configuration. The environment
variables the tools honour are listed in docs/ARCHITECTURE.md.

It is also the one place that runs nbgrader's ``generate_assignment``: in this process,
through nbgrader's own converter, for ``workbook release``, the demo, the sync test and the
grader's master copies alike.
"""
from __future__ import annotations

import copy
import functools
import os
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

CONFIG = "nbgrader_config.py"


class CourseError(Exception):
    """The course cannot be found or used (the message says what to do)."""


@dataclass(frozen=True)
class Mutant:
    """A plausible wrong answer (``autograder/mutants/<assignment>.toml``): in the solution cell
    ``cell``, ``find`` becomes ``replace``; the tests in ``loses`` must then lose points."""
    name: str
    mistake: str
    cell: str
    find: str
    replace: str
    loses: list[str] = field(default_factory=list)


@functools.cache
def _alembic_head() -> str:
    """The newest revision of nbgrader's gradebook schema, read from nbgrader's own migration
    scripts in this process (nbgrader asks a new ``alembic heads`` process, which imports
    nbgrader again: seconds per gradebook on a 2-core machine)."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import _temp_alembic_ini

    with _temp_alembic_ini("sqlite:////tmp/gradebook.db") as ini:
        return ScriptDirectory.from_config(AlembicConfig(ini)).get_current_head()


def new_gradebook(db: Path) -> None:
    """An empty nbgrader gradebook at ``db``: nbgrader's tables and its alembic stamp, exactly
    what ``nbgrader.api.Gradebook`` writes when it finds no database."""
    from nbgrader.api import Base
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{db}", future=True)
    try:
        Base.metadata.create_all(bind=engine)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
                               {"v": _alembic_head()})
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Course:
    root: Path

    @classmethod
    def find(cls, start: Path | None = None) -> "Course":
        """The nearest folder at or above ``start`` (default: the current folder) that holds
        ``nbgrader_config.py`` and the source notebooks."""
        here = Path(start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / CONFIG).is_file():
                return cls(folder)
        raise CourseError(f"no {CONFIG} here or above {here}; run this from inside the course's "
                          "checkout (the folder with nbgrader_config.py, solutions/ and course/)")

    # ------------------------------------------------------------------ configuration
    @functools.cached_property
    def config(self):
        from traitlets.config.loader import PyFileConfigLoader

        return PyFileConfigLoader(CONFIG, path=str(self.root)).load_config()

    def _folder(self, trait: str, default: str) -> Path:
        value = self.config.get("CourseDirectory", {}).get(trait, default)
        return (self.root / value).resolve()

    @property
    def source_dir(self) -> Path:
        return self._folder("source_directory", "source")

    @property
    def release_dir(self) -> Path:
        return self._folder("release_directory", "release")

    @property
    def submitted_dir(self) -> Path:
        return self._folder("submitted_directory", "submitted")

    @property
    def cell_timeout(self) -> int:
        return int(self.config.get("Execute", {}).get("timeout", 30))

    @property
    def preload(self) -> list[str]:
        """What the grader imports before forking kernels when it grades every assignment:
        ``GradingSandbox.preload`` and every assignment's ``GradingSandbox.preload_for``."""
        return self.preload_for(self.preload_extras())

    def preload_extras(self) -> dict[str, list[str]]:
        """``GradingSandbox.preload_for``: assignment -> the modules only it needs."""
        extras = self.config.get("GradingSandbox", {}).get("preload_for", {}) or {}
        return {str(k): list(v) for k, v in dict(extras).items()}

    def preload_for(self, assignments) -> list[str]:
        """What the grader imports before forking the kernels of a run that grades
        ``assignments``: the course's common list, then what each of them adds, each module
        once. A module a notebook needs but nobody listed still works: its kernel imports it."""
        extras = self.preload_extras()
        modules = list(self.config.get("GradingSandbox", {}).get("preload", []))
        for assignment in sorted(assignments):
            modules += extras.get(assignment, [])
        return list(dict.fromkeys(modules))

    @property
    def autograder_dir(self) -> Path:
        """Wrong and hostile submissions the grader is tested against."""
        return self.root / "autograder"

    def hidden_from_students(self) -> tuple[Path, ...]:
        """What no student's code may ever see: the solutions, the wrong submissions (their
        ``find`` strings quote the solutions) and the instructor's packages (the reference
        answers, the grader)."""
        import workbook_grader

        packages = (Path(__file__).resolve().parent, Path(workbook_grader.__file__).resolve().parent)
        return (self.source_dir, self.autograder_dir, *packages)

    # ------------------------------------------------------------------ contents
    def assignments(self) -> list[str]:
        return sorted(p.name for p in self.source_dir.iterdir()
                      if p.is_dir() and any(p.glob("*.ipynb")))

    def check_assignments(self, names: list[str] | None) -> list[str]:
        known = self.assignments()
        names = list(names or known)
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise CourseError(f"no such assignment in {self.source_dir.name}/: "
                              f"{', '.join(unknown)} (known: {', '.join(known)})")
        return names

    def mutants(self, assignment: str) -> list[Mutant]:
        path = self.autograder_dir / "mutants" / f"{assignment}.toml"
        if not path.is_file():
            return []
        table = tomllib.loads(path.read_text(encoding="utf-8"))
        return [Mutant(name=name, **spec) for name, spec in table.items()]

    # ------------------------------------------------------------------ nbgrader
    def generate(self, assignment: str, release_dir: Path, db: Path) -> Path:
        """``nbgrader generate_assignment``: write the student version of ``assignment`` into
        ``release_dir/assignment`` and record its grade cells (hidden tests included) in the
        gradebook ``db``. Returns the released folder."""
        from workbook_grader.nbgrader_main import skip_slow_imports

        skip_slow_imports()
        from nbgrader.converters import GenerateAssignment
        from nbgrader.coursedir import CourseDirectory
        from nbgrader.utils import capture_log
        from traitlets.config import Config

        config = Config(copy.deepcopy(self.config))   # merge() would change our own sections
        config.merge(Config({"CourseDirectory": {
            "root": str(self.root), "release_directory": str(Path(release_dir).resolve()),
            "db_url": f"sqlite:///{Path(db).resolve()}", "assignment_id": assignment}}))
        Path(db).parent.mkdir(parents=True, exist_ok=True)
        if not Path(db).exists():
            new_gradebook(Path(db))
        converter = GenerateAssignment(coursedir=CourseDirectory(config=config), config=config)
        converter.force = converter.create_assignment = True
        done = capture_log(converter)   # the gradebook exists: nbgrader starts no alembic
        if not done["success"]:
            raise CourseError(f"nbgrader could not generate {assignment}:\n"
                              f"{done.get('error', '')[-4000:]}\n{done.get('log', '')[-2000:]}")
        return Path(release_dir) / assignment

    def nbgrader_env(self, base: dict | None = None) -> dict:
        """Environment for an ``nbgrader`` process: this interpreter's scripts folder first on
        PATH (nbgrader runs ``alembic`` from there when it creates a gradebook)."""
        env = dict(os.environ if base is None else base)
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        return env

    def nbgrader_flags(self, work: Path, db: Path) -> list[str]:
        """Command-line flags that point a stock ``nbgrader`` run from the course root at a
        grading run's own folders and gradebook (everything else comes from the config)."""
        return [
            f"--CourseDirectory.root={work}",
            f"--CourseDirectory.source_directory={self.source_dir}",
            "--CourseDirectory.release_directory=release",
            "--CourseDirectory.submitted_directory=submitted",
            "--CourseDirectory.autograded_directory=autograded",
            "--CourseDirectory.feedback_directory=feedback",
            f"--CourseDirectory.db_url=sqlite:///{db}",
        ]
