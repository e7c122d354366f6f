"""Local quiz progress: one JSON file in the user's data folder, written atomically.

Location: ``data_dir()`` (``$WORKBOOK_DATA`` if set, else the platform's user data folder for
"transformer-workbook"). A file that cannot be read is never overwritten in place: it is
renamed to ``progress.json.corrupt-<time>`` and a fresh record starts, with a message saying
where the old file went.
"""
from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import NamedTuple

from ..storage import data_dir, write_atomically
from .bank import Question, load_bank, questions_for

FILENAME = "progress.json"
VERSION = 1
MAX_STORED_ANSWER = 20000


def progress_path() -> Path:
    return data_dir() / FILENAME


def _empty() -> dict:
    return {"version": VERSION, "questions": {}}


def _valid(data) -> bool:
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return False
    questions = data.get("questions")
    if not isinstance(questions, dict):
        return False
    for entry in questions.values():
        if not isinstance(entry, dict) or not isinstance(entry.get("attempts"), list):
            return False
        for attempt in entry["attempts"]:
            if not isinstance(attempt, dict) or not isinstance(attempt.get("score"), (int, float)):
                return False
    return True


class Progress:
    """Attempts per question id: ``{"version": 1, "questions": {id: {"topic", "attempts"}}}``."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else progress_path()
        self.messages: list[str] = []
        self.data = self._read()

    def _read(self) -> dict:
        if not self.path.exists():
            return _empty()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            problem = None if _valid(data) else "it does not have the expected structure"
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            problem = f"it could not be read ({err})"
        if problem is None:
            return data
        backup = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        n = 1
        while backup.exists():
            backup = backup.with_name(f"{backup.name.split('~')[0]}~{n}")
            n += 1
        os.replace(self.path, backup)
        self.messages.append(f"the progress file {self.path} was unusable: {problem}. It was kept "
                             f"as {backup.name} and a new progress record was started.")
        return _empty()

    def save(self) -> None:
        write_atomically(self.path, json.dumps(self.data, indent=1, sort_keys=True))

    def record(self, question: Question, score: float, answer: str = "", *,
               save: bool = True) -> None:
        entry = self.data["questions"].setdefault(question.id,
                                                  {"topic": question.topic, "attempts": []})
        entry["topic"] = question.topic
        entry["attempts"].append({"score": round(float(score), 4), "time": int(time.time()),
                                  "answer": str(answer)[:MAX_STORED_ANSWER]})
        if save:
            self.save()

    def question_score(self, question_id: str) -> float | None:
        """Latest score for a question, or None when never attempted."""
        entry = self.data["questions"].get(question_id)
        if not entry or not entry["attempts"]:
            return None
        return float(entry["attempts"][-1]["score"])

    def _topic_scores(self) -> dict[str, tuple[list[float], int]]:
        """Per topic, in bank order: (latest scores of its answered questions, its bank size)."""
        seen: dict[str, list[float]] = {}
        size: dict[str, int] = {}
        for q in load_bank():
            size[q.topic] = size.get(q.topic, 0) + 1
            s = self.question_score(q.id)
            seen.setdefault(q.topic, []).extend([] if s is None else [s])
        return {t: (seen[t], size[t]) for t in size}

    def topic_strength(self) -> dict[str, float]:
        """Mean latest score per topic over all its bank questions (unseen questions count 0).

        Used to pick weak topics; for display use ``topic_mastery``, which tells a topic never
        asked apart from one answered badly.
        """
        return {t: sum(seen) / size for t, (seen, size) in self._topic_scores().items()}

    def topic_mastery(self) -> dict[str, "Mastery"]:
        """Per topic: mean latest score over its answered questions (None when none was ever
        answered), questions answered, questions in the bank."""
        return {t: Mastery(sum(seen) / len(seen) if seen else None, len(seen), size)
                for t, (seen, size) in self._topic_scores().items()}

    def choose(self, n: int, topic: str | None = None, *, seed: int | None = None
               ) -> list[Question]:
        """Pick ``n`` questions favouring weak topics and weak or unseen questions."""
        pool = questions_for(topic)
        strength = self.topic_strength()
        rng = random.Random(seed)
        weights = []
        for q in pool:
            own = self.question_score(q.id)
            weakness = (1.0 - strength[q.topic]) + (1.0 if own is None else 1.0 - own)
            weights.append(0.05 + weakness)
        chosen: list[Question] = []
        pool, weights = list(pool), list(weights)
        while pool and len(chosen) < n:
            i = rng.choices(range(len(pool)), weights=weights)[0]
            chosen.append(pool.pop(i))
            weights.pop(i)
        return chosen


class Mastery(NamedTuple):
    score: float | None     # mean latest score over the answered questions; None: never asked
    answered: int
    total: int


def describe_mastery(mastery: Mastery) -> str:
    """'not yet asked' for a topic never answered, else e.g. '62% (2 of 3 questions answered)'."""
    if mastery.score is None:
        return "not yet asked"
    return f"{mastery.score:.0%} ({mastery.answered} of {mastery.total} questions answered)"
