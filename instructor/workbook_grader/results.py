"""What grading one student produces, and how it is saved (atomically, as JSON)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass
class CellResult:
    grade_id: str
    notebook: str
    points: float
    max_points: float
    message: str = ""          # why it lost points: exception type and message, never source
    hidden: bool = False

    @property
    def passed(self) -> bool:
        return self.points >= self.max_points


@dataclass
class StudentResult:
    student: str
    assignment: str
    score: float = 0.0
    max_score: float = 0.0
    status: str = "graded"     # "graded", or "error" when nothing could be graded
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cells: list[CellResult] = field(default_factory=list)
    seconds: float = 0.0
    fingerprint: str = ""      # hash of the submission files, for resuming a killed run

    def total(self) -> None:
        self.score = round(sum(c.points for c in self.cells), 4)
        self.max_score = round(sum(c.max_points for c in self.cells), 4)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "StudentResult":
        data = json.loads(text)
        cells = [CellResult(**c) for c in data.pop("cells")]
        return cls(**data, cells=cells)
