"""The question bank (``bank.toml``, shipped as package data) and topic lookup."""
from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


class QuizError(ValueError):
    """Bad input to the quiz (unknown topic or question, unusable answer); the message says why."""


@dataclass(frozen=True)
class Question:
    id: str
    topic: str
    question: str
    answer: str
    key_points: tuple[str, ...]


def _unwrap(text: str) -> str:
    """The bank wraps long lines; join them back into paragraphs."""
    paragraphs = [" ".join(p.split()) for p in text.strip().split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


@lru_cache(maxsize=1)
def load_bank() -> tuple[Question, ...]:
    """All questions, in bank order. Validated: unique ids, 3-5 key points each."""
    raw = resources.files(__package__).joinpath("bank.toml").read_text(encoding="utf-8")
    entries = tomllib.loads(raw)["question"]
    questions, seen = [], set()
    for entry in entries:
        q = Question(id=entry["id"], topic=entry["topic"], question=_unwrap(entry["question"]),
                     answer=_unwrap(entry["answer"]), key_points=tuple(entry["key_points"]))
        if q.id in seen:
            raise ValueError(f"bank.toml: duplicate question id {q.id!r}")
        if not 3 <= len(q.key_points) <= 5:
            raise ValueError(f"bank.toml: {q.id} needs 3-5 key points, has {len(q.key_points)}")
        seen.add(q.id)
        questions.append(q)
    return tuple(questions)


def topics() -> list[str]:
    """Topic names in the order they first appear in the bank."""
    return list(dict.fromkeys(q.topic for q in load_bank()))


def resolve_topic(name) -> str:
    """Return the topic called ``name`` (case and surrounding space ignored) or raise QuizError."""
    known = topics()
    if not isinstance(name, str) or not name.strip():
        raise QuizError(f"a topic must be a non-empty name; known topics: {', '.join(known)}")
    wanted = name.strip().lower()
    for topic in known:
        if topic.lower() == wanted:
            return topic
    # topics that start with what was typed first ("kv" -> "kv-cache"), then similar spellings
    starts = [t for t in known if t.lower().startswith(wanted)]
    close = list(dict.fromkeys(starts + difflib.get_close_matches(wanted, known, n=3,
                                                                   cutoff=0.5)))[:3]
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise QuizError(f"unknown topic {name.strip()!r}.{hint} Known topics: {', '.join(known)}")


def get_question(question_id: str) -> Question:
    for q in load_bank():
        if q.id == question_id:
            return q
    close = difflib.get_close_matches(str(question_id), [q.id for q in load_bank()], n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise QuizError(f"no question with id {question_id!r} in the bank.{hint}")


def questions_for(topic: str | None = None) -> list[Question]:
    if topic is None:
        return list(load_bank())
    topic = resolve_topic(topic)
    return [q for q in load_bank() if q.topic == topic]


def show_question(question_id: str, *, answer: bool = True):
    """Display one question (and its reference answer) as Markdown in a notebook.

    Notebook 08 calls this above each evidence cell, so the prose lives only in the bank.
    Outside IPython it prints plain text.
    """
    q = get_question(question_id)
    text = f"**Q ({q.topic}).** {q.question}"
    if answer:
        text += f"\n\n**Reference answer.** {q.answer}\n\n*Key points:* " + "; ".join(q.key_points)
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython ships with the package's dependencies
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(Markdown(text))
    else:
        print(text)
    return None
