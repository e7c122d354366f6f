"""Score a free-text answer against a question's key points with MiniLM sentence embeddings.

The answer is split into sentences, their clauses (and pairs of neighbouring clauses) and, in
long sentences, windows of words. Each key point takes the best cosine similarity (mean-pooled
MiniLM vectors) over the pieces, less penalties for what an embedding cannot see: a sentence that
is only a list of terms ("keyword salad"), a negation that the key point does not share, and a
piece that fits another key point much better (see ``adjusted_similarities``). A key point is
covered ("hit") when that adjusted similarity reaches HIT_THRESHOLD. The score is the average,
over key points, of the adjusted similarity mapped onto (0, 1) by a logistic curve centred on
``MID`` (so scores never tie at an end of the scale: a vague answer still ranks above an
unrelated one). Everything runs offline on the packaged encoder and is deterministic.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .bank import Question, QuizError

MAX_ANSWER_CHARS = 4000
HIT_THRESHOLD = 0.5
MID, SPREAD = 0.45, 0.08   # similarity 0.15 -> 0.02, 0.45 -> 0.5, 0.75 -> 0.98
_WINDOW = 12  # words per sliding window (only inside sentences longer than two windows)
SALAD_SHARE = 0.2        # sentences with a smaller share of function words are penalised ...
SALAD_PENALTY = 0.5      # ... by up to this much similarity (all of it at a share of 0)
NEGATION_PENALTY = 0.5   # taken off when the piece is negated and the key point is not ...
DROPPED_NEGATION_PENALTY = 0.2   # ... and when the key point is negated and the piece is not
MARGIN, ELSEWHERE_PENALTY = 0.15, 0.2   # a piece this much closer to another key point
#                                         loses this much on this one


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


# Closed-class words (articles, pronouns, prepositions, conjunctions, auxiliaries, modals) and a
# few light verbs. A sentence of English uses many of them; a list of terms ("keyword salad")
# almost none. Negations are left out: "no learned parameters" is still a list of terms.
FUNCTION_WORDS = frozenset("""
a an the this that these those each every all any some both either one its it itself they them
their he she his her we our you your i me my who whom whose which what when where why how than
then there here as of in on at to for from by with within into onto over under after before
between through during about above below across along against among around behind beyond near
up down out off per via and or but so yet because since while whereas although though if unless
until once whether is are was were be been being am has have had having do does did doing done
can could may might must shall should will would only also just still even more most less least
much many few same such very too again ever instead rather other another own get gets got make
makes made give gives given keep keeps let lets
""".split())
NEGATIONS = frozenset("not no never n't cannot without none nor neither nothing nobody".split())
_WORD = re.compile(r"[a-z0-9_']+(?:[-/][a-z0-9_']+)*")
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+|\n+")
_CLAUSE = re.compile(r",\s+|\s+(?:but|while|whereas|because|since|although|though)\s+",
                     re.IGNORECASE)


def _words(text: str) -> list[str]:
    words = []
    for w in _WORD.findall(text.lower()):
        words += [w[:-3], "n't"] if w.endswith("n't") else [w]
    return words


def function_share(text: str) -> float:
    """Share of the words of ``text`` that are function words (0 for a list of terms)."""
    words = _words(text)
    return sum(w in FUNCTION_WORDS for w in words) / max(1, len(words))


def negated(text: str) -> bool:
    """Whether ``text`` holds a negation cue (not, no, never, without, ...).

    Any cue counts: "A does not X, and B does not Y" negates both clauses, not neither.
    """
    return any(w in NEGATIONS for w in _words(text))


def split_answer(text: str) -> list[tuple[str, str]]:
    """(piece, its sentence) pairs: each sentence, its clauses and pairs of neighbouring
    clauses, and windows of words inside long sentences.

    Pieces never cross a sentence boundary, so a negation in one sentence does not spill onto
    another, and a key point is matched by the part of the answer that states it.
    """
    pairs: dict[str, str] = {}
    for sentence in _SENTENCE.split(text):
        sentence = sentence.strip()
        if not sentence:
            continue
        pieces = [sentence]
        clauses = [c.strip() for c in _CLAUSE.split(sentence) if c.strip()]
        if len(clauses) > 1:
            pieces += clauses + [f"{a}, {b}" for a, b in zip(clauses, clauses[1:])]
        words = sentence.split()
        if len(words) > 2 * _WINDOW:
            pieces += [" ".join(words[i:i + _WINDOW])
                       for i in range(0, len(words) - _WINDOW + 1, _WINDOW // 2)]
        for piece in pieces:
            pairs.setdefault(piece, sentence)
    return list(pairs.items())


def answer_pieces(text: str) -> list[str]:
    """The pieces of ``split_answer`` without their sentences."""
    return [piece for piece, _ in split_answer(text)]


def adjusted_similarities(sims, pieces: list[str], sentences: list[str], points: list[str]):
    """Cosine similarities [points, pieces] less the penalties the scorer applies.

    * keyword salad: the piece's sentence has fewer than SALAD_SHARE function words; up to
      SALAD_PENALTY (all of it for a sentence with none);
    * negation: the piece has a negation cue and the key point none (NEGATION_PENALTY), or the
      other way round (DROPPED_NEGATION_PENALTY: smaller, as a correct answer often states a
      negated key point positively, "stay the same" for "do not change");
    * another key point: the piece is more than MARGIN closer to some other key point, which it
      states (similarity at least HIT_THRESHOLD): ELSEWHERE_PENALTY, so it is credited where it
      fits best (one statement does not earn two neighbouring points).
    The constants were chosen on the calibration half of tests/data/quiz_labelled.toml; see
    docs/results/quiz-scorer.md for the measurements on the held-out half.
    """
    import torch

    share = torch.tensor([function_share(s) for s in sentences], dtype=sims.dtype)
    salad = (SALAD_SHARE - share).clamp_min(0.0) / SALAD_SHARE
    neg_piece = torch.tensor([negated(p) for p in pieces])
    neg_point = torch.tensor([negated(p) for p in points])
    added = (neg_piece[None, :] & ~neg_point[:, None]).to(sims.dtype)
    dropped = (~neg_piece[None, :] & neg_point[:, None]).to(sims.dtype)
    fits = sims.max(dim=0, keepdim=True).values      # each piece's closest key point
    elsewhere = ((sims < fits - MARGIN) & (fits >= HIT_THRESHOLD)).to(sims.dtype)
    return (sims - SALAD_PENALTY * salad[None, :] - NEGATION_PENALTY * added
            - DROPPED_NEGATION_PENALTY * dropped - ELSEWHERE_PENALTY * elsewhere)


@dataclass
class ScoreResult:
    score: float                      # 0..1
    hits: list[str]
    misses: list[str]
    similarities: list[float]         # best adjusted similarity per key point, bank order
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
        pairs = split_answer(text)
        pieces, sentences = [p for p, _ in pairs], [s for _, s in pairs]
        points = list(question.key_points)
        sims = self.embed(points) @ self.embed(pieces).T          # [points, pieces]
        sims = adjusted_similarities(sims, pieces, sentences, points)
        best = [round(float(v), 4) for v in sims.max(dim=1).values]
        hits = [p for p, s in zip(points, best) if s >= HIT_THRESHOLD]
        misses = [p for p, s in zip(points, best) if s < HIT_THRESHOLD]
        scaled = [1.0 / (1.0 + math.exp(-(s - MID) / SPREAD)) for s in best]
        return ScoreResult(score=sum(scaled) / len(scaled), hits=hits, misses=misses,
                           similarities=best, warnings=warnings)
