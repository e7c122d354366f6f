"""Measure the quiz scorer on a labelled set of answers (``tests/data/quiz_labelled.toml``).

Each labelled answer names its question, its class (correct, partial, wrong, salad, negated) and
the key points it really covers. A key point counts as predicted when the scorer lists it as a
hit. Precision and recall are pooled over (answer, key point) pairs; the mean score is given per
class. Run from the repository root::

    python -m transformer_workbook.quiz.evaluate tests/data/quiz_labelled.toml --split held-out
"""
from __future__ import annotations

import argparse
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .bank import Question, get_question

CLASSES = ("correct", "partial", "wrong", "salad", "negated")


@dataclass(frozen=True)
class Labelled:
    question: Question
    split: str
    kind: str
    covers: frozenset[int]     # 0-based key point indices
    text: str


def load_labelled(path) -> list[Labelled]:
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    out = []
    for item in data["item"]:
        q = get_question(item["question"])
        for ans in item["answer"]:
            if ans["class"] not in CLASSES:
                raise ValueError(f"{q.id}: unknown class {ans['class']!r}")
            covers = frozenset(i - 1 for i in ans["covers"])
            if not all(0 <= i < len(q.key_points) for i in covers):
                raise ValueError(f"{q.id}: key point index out of range in {ans['covers']}")
            out.append(Labelled(q, item["split"], ans["class"], covers,
                                " ".join(ans["text"].split())))
    return out


def evaluate(scorer, answers: list[Labelled]) -> dict:
    """Pooled precision/recall of the key-point hits, and mean score and hit share per class."""
    per_class: dict[str, list[tuple[float, float]]] = {c: [] for c in CLASSES}
    per_question: dict[str, list[int]] = {}
    seconds = []
    for a in answers:
        start = time.perf_counter()
        result = scorer.score(a.question, a.text)
        seconds.append(time.perf_counter() - start)
        hits = {i for i, p in enumerate(a.question.key_points) if p in result.hits}
        counts = per_question.setdefault(a.question.id, [0, 0, 0])
        for i in range(len(a.question.key_points)):
            pred, true = i in hits, i in a.covers
            counts[0] += pred and true
            counts[1] += pred and not true
            counts[2] += true and not pred
        per_class[a.kind].append((result.score, len(hits) / len(a.question.key_points)))
    tp, fp, fn = (sum(c[j] for c in per_question.values()) for j in range(3))
    return {
        "n": len(answers), "tp": tp, "fp": fp, "fn": fn,
        "precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn),
        "classes": {c: (sum(s for s, _ in v) / len(v), sum(h for _, h in v) / len(v), len(v))
                    for c, v in per_class.items() if v},
        "questions": {q: (c[0] / max(1, c[0] + c[1]), c[0] / max(1, c[0] + c[2]))
                      for q, c in per_question.items()},
        "max_seconds": max(seconds), "mean_seconds": sum(seconds) / len(seconds),
    }


def markdown(stats: dict, title: str) -> str:
    lines = [f"**{title}** ({stats['n']} answers): key-point precision "
             f"{stats['precision']:.2f}, recall {stats['recall']:.2f} "
             f"(tp {stats['tp']}, fp {stats['fp']}, fn {stats['fn']}); "
             f"seconds per answer: mean {stats['mean_seconds']:.2f}, "
             f"max {stats['max_seconds']:.2f}",
             "", "| class | answers | mean score | mean share of key points hit |",
             "|---|---|---|---|"]
    for c, (score, hit, n) in stats["classes"].items():
        lines.append(f"| {c} | {n} | {score:.2f} | {hit:.2f} |")
    lines += ["", "| question | precision | recall |", "|---|---|---|"]
    for q, (p, r) in stats["questions"].items():
        lines.append(f"| {q} | {p:.2f} | {r:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--split", choices=["calibration", "held-out", "all"], default="all")
    args = parser.parse_args(argv)
    from .scorer import Scorer

    answers = [a for a in load_labelled(args.path) if args.split in ("all", a.split)]
    scorer = Scorer()
    scorer.score(answers[0].question, "warm-up")       # load the encoder outside the timing
    print(markdown(evaluate(scorer, answers), f"split {args.split}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
