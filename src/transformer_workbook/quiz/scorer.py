"""Score a free-text answer against a question's key points with MiniLM sentence embeddings.

The answer is split into sentences and overlapping windows of words; each key point counts as
covered ("hit") when some piece of the answer is close enough to it in embedding space (cosine
similarity of mean-pooled MiniLM vectors). The score is the average, over key points, of the best
similarity mapped onto (0, 1) by a logistic curve centred on ``MID`` (so scores never tie at
an end of the scale: a vague answer still ranks above an unrelated one). Everything runs offline on the
packaged encoder.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .bank import Question, QuizError

MAX_ANSWER_CHARS = 4000
HIT_THRESHOLD = 0.5
MID, SPREAD = 0.45, 0.08   # similarity 0.15 -> 0.02, 0.45 -> 0.5, 0.75 -> 0.98
_WINDOW = 12  # words per sliding window


def clean_answer(answer) -> tuple[str, list[str]]:
    """Validate an answer; return (text to score, warnings) or raise QuizError.

    * non-text input: bytes are decoded as UTF-8, anything else is refused;
    * empty or whitespace-only: refused (nothing to score);
    * longer than MAX_ANSWER_CHARS: the first MAX_ANSWER_CHARS are scored, with a warning
      (the caller keeps the full text).
    """
    warnings: list[str] = []
    if isinstance(answer, (bytes, bytearray)):
        try:
            answer = bytes(answer).decode("utf-8")
        except UnicodeDecodeError as err:
            raise QuizError(f"the answer is bytes that are not valid UTF-8 text ({err.reason}); "
                            "type the answer as text") from None
    if not isinstance(answer, str):
        raise QuizError(f"the answer must be text, got {type(answer).__name__}; "
                        "write your answer as a sentence or two")
    text = answer.replace("\x00", " ").strip()
    if not text:
        raise QuizError("the answer is empty; write what you know (a sentence or two), "
                        "or skip the question")
    if not re.search(r"\w", text):
        raise QuizError("the answer has no letters or digits; write it out in words")
    if len(text) > MAX_ANSWER_CHARS:
        warnings.append(f"the answer is {len(text)} characters long; only the first "
                        f"{MAX_ANSWER_CHARS} were scored (your full answer is kept)")
        text = text[:MAX_ANSWER_CHARS]
    return text, warnings


def answer_pieces(text: str) -> list[str]:
    """Sentences, plus overlapping windows of words so long sentences can match short points."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?;:])\s+|\n+", text) if s.strip()]
    words = text.split()
    windows = [" ".join(words[i:i + _WINDOW])
               for i in range(0, max(1, len(words) - _WINDOW + 1), _WINDOW // 2)]
    return list(dict.fromkeys(sentences + windows + [text]))


@dataclass
class ScoreResult:
    score: float                      # 0..1
    hits: list[str]
    misses: list[str]
    similarities: list[float]         # best similarity per key point, bank order
    warnings: list[str] = field(default_factory=list)

    def report(self, question: Question | None = None) -> str:
        lines = [f"score: {self.score:.0%} ({len(self.hits)}/{len(self.hits) + len(self.misses)}"
                 " key points covered)"]
        lines += [f"  [x] {p}" for p in self.hits] + [f"  [ ] {p}" for p in self.misses]
        lines += [f"note: {w}" for w in self.warnings]
        if question is not None:
            lines += ["", "reference answer:", question.answer]
        return "\n".join(lines)


class Scorer:
    """Embeds texts with the packaged MiniLM encoder (loaded on first use)."""

    def __init__(self, tokenizer=None, model=None):
        self._tokenizer, self._model = tokenizer, model
        self._cache: dict[str, object] = {}

    def _load(self):
        if self._model is None:
            from ..models import load_encoder

            self._tokenizer, self._model = load_encoder()
            self._model.eval()

    def embed(self, texts: list[str]):
        """L2-normalised mean-pooled embeddings, one row per text (padding excluded)."""
        import torch

        self._load()
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        for start in range(0, len(missing), 64):
            batch = missing[start:start + 64]
            enc = self._tokenizer(batch, padding=True, truncation=True, max_length=128,
                                  return_tensors="pt")
            with torch.no_grad():
                hidden = self._model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            for text, vec in zip(batch, pooled):
                self._cache[text] = vec
        return torch.stack([self._cache[t] for t in texts])

    def score(self, question: Question, answer) -> ScoreResult:
        text, warnings = clean_answer(answer)
        pieces = answer_pieces(text)
        points = list(question.key_points)
        sims = self.embed(points) @ self.embed(pieces).T          # [points, pieces]
        best = [round(float(v), 4) for v in sims.max(dim=1).values]
        hits = [p for p, s in zip(points, best) if s >= HIT_THRESHOLD]
        misses = [p for p, s in zip(points, best) if s < HIT_THRESHOLD]
        scaled = [1.0 / (1.0 + math.exp(-(s - MID) / SPREAD)) for s in best]
        return ScoreResult(score=sum(scaled) / len(scaled), hits=hits, misses=misses,
                           similarities=best, warnings=warnings)
