"""The quiz scorer on held-out answers.

HELD_OUT: questions that are not in the bank, each with a good and a vague answer; none of them
was used to choose the scorer's constants. tests/data/quiz_labelled.toml (issue #18): labelled
correct, partial, wrong, keyword-salad and negated answers to bank questions; the constants were
chosen on its "calibration" split and the tests below use its "held-out" split only
(docs/results/quiz-scorer.md has the measurements).
"""
from pathlib import Path

import pytest

from transformer_workbook.quiz import Question, QuizError, Scorer, load_bank
from transformer_workbook.quiz.evaluate import evaluate, load_labelled

LABELLED = Path(__file__).parent / "data" / "quiz_labelled.toml"

HELD_OUT = [
    ("What does the feed-forward block in a transformer layer do?",
     ["applies the same two-layer MLP to every position independently",
      "expands the hidden size, usually four times, then projects back",
      "adds a nonlinearity such as GELU",
      "holds most of the layer's parameters"],
     "It is a position-wise two-layer MLP applied to each token on its own: it expands the hidden size about four times, applies a GELU nonlinearity and projects back. Most of a layer's parameters live there.",
     "It is another part of the model that helps it work better and learn things."),
    ("Why do transformers use residual connections?",
     ["add the block input to its output", "give gradients a direct path to early layers",
      "make deep networks trainable", "each block learns a small update to the stream"],
     "Each block adds its output to its input, so the network learns small updates to a residual stream. The identity path lets gradients flow straight to early layers, which makes very deep stacks trainable.",
     "They are connections in the network that are important for it."),
    ("What is the purpose of multi-head attention?",
     ["several heads attend in parallel with separate projections", "each head can learn a different relation",
      "head outputs are concatenated and projected", "same cost as one large head"],
     "Several smaller heads attend in parallel, each with its own query, key and value projections, so different heads can capture different relations such as syntax or coreference. Their outputs are concatenated and projected, at about the same cost as one big head.",
     "Multiple heads make the model more powerful in general."),
    ("What is beam search and when does it help?",
     ["keeps the k most likely partial sequences", "expands each and keeps the best k again",
      "finds higher likelihood outputs than greedy decoding", "good for translation, bland for open-ended text"],
     "Beam search keeps the k most likely partial sequences, extends each by every token and keeps the best k again. It finds higher-likelihood outputs than greedy decoding, which helps translation and summarisation but gives bland, repetitive open-ended text.",
     "It is a way of searching that the model does to get answers."),
    ("What is top-p (nucleus) sampling?",
     ["sample from the smallest set of tokens whose probability sums to p", "the candidate set adapts to the distribution",
      "cuts off the unreliable low-probability tail", "more diverse than greedy decoding"],
     "Nucleus sampling sorts tokens by probability and samples only from the smallest set whose total probability reaches p. The set adapts: small when the model is confident, large when unsure. It cuts the low-probability tail while staying more diverse than greedy decoding.",
     "It is a sampling setting you can change when generating text."),
    ("Why is tokenization with byte-pair encoding used?",
     ["merges frequent pairs of symbols into subwords", "fixed vocabulary size", "no out-of-vocabulary words",
      "rare words are split into pieces"],
     "BPE starts from characters or bytes and repeatedly merges the most frequent adjacent pair into a new subword, until a fixed vocabulary size. Any word can be written with these pieces, so there are no out-of-vocabulary words; rare words just split into several pieces.",
     "Tokenization is needed to turn text into something the model can use."),
    ("What is perplexity?",
     ["exponential of the average negative log-likelihood per token", "lower is better",
      "like the effective number of choices per token", "depends on the tokenizer"],
     "Perplexity is the exponential of the average negative log-likelihood per token on held-out text. Lower is better; it reads as the effective number of equally likely choices per token. It depends on the tokenizer, so compare only models with the same vocabulary.",
     "It is a number that tells you about the model quality."),
    ("What does weight decay do in AdamW?",
     ["shrinks weights toward zero each step", "decoupled from the gradient-based update",
      "regularises to reduce overfitting", "usually not applied to biases and norm gains"],
     "Weight decay shrinks every weight a little toward zero at each step, a regulariser against overfitting. AdamW decouples it from the adaptive gradient update instead of adding it to the loss, and biases and LayerNorm gains are usually excluded.",
     "It is an optimizer setting that changes how training goes."),
    ("Why use learning-rate warmup when training transformers?",
     ["start with a small learning rate and increase it", "early Adam statistics are unreliable",
      "prevents divergence early in training", "especially needed for post-LN models"],
     "Warmup starts from a small learning rate and raises it over the first steps. Early on Adam's moment estimates are noisy and the gradients can be large, so big steps make training diverge; warmup avoids that and is especially needed for post-LN transformers.",
     "Warmup is a training trick that people often use."),
    ("What is gradient checkpointing?",
     ["store only some activations during the forward pass", "recompute the rest during the backward pass",
      "trades extra compute for memory", "allows larger batches or models"],
     "Gradient checkpointing keeps only some activations, for example at block boundaries, and recomputes the others during the backward pass. It trades roughly one extra forward pass of compute for much less activation memory, allowing bigger batches or models.",
     "It is a memory thing used in training."),
    ("What is the difference between fp16 and bf16?",
     ["both use 16 bits", "bf16 keeps the 8-bit exponent range of fp32", "fp16 has more mantissa precision but a small range",
      "fp16 needs loss scaling to avoid underflow"],
     "Both are 16-bit formats. bf16 keeps fp32's 8 exponent bits, so it has the same range and rarely overflows or underflows, but fewer mantissa bits. fp16 has more precision but a narrow range, so mixed-precision training with fp16 needs loss scaling.",
     "They are two number formats that computers use."),
    ("What is speculative decoding?",
     ["a small draft model proposes several tokens", "the large model verifies them in one forward pass",
      "accepted tokens follow the large model's distribution exactly", "speeds up generation when the draft is often right"],
     "A small draft model proposes several tokens cheaply, and the large model checks all of them in one parallel forward pass, accepting a prefix with a rejection rule that keeps exactly the large model's output distribution. It speeds generation when the draft is usually right.",
     "It is a faster way of decoding that some systems use."),
]
OFF_TOPIC = "My favourite recipe is tomato soup with basil, simmered slowly and served with bread."


@pytest.fixture(scope="module")
def scorer():
    return Scorer()


def test_held_out_set_is_big_enough():
    assert len(HELD_OUT) >= 10
    bank_questions = {q.question for q in load_bank()}
    assert not bank_questions & {q for q, *_ in HELD_OUT}


@pytest.mark.parametrize("index", range(len(HELD_OUT)))
def test_good_beats_vague_beats_off_topic(scorer, index):
    text, points, good, vague = HELD_OUT[index]
    question = Question(f"held-out-{index}", "held-out", text, good, tuple(points))
    s_good, s_vague, s_off = (scorer.score(question, a) for a in (good, vague, OFF_TOPIC))
    assert s_good.score > max(s_vague.score, s_off.score), (text, s_good.score, s_vague.score,
                                                            s_off.score)
    assert len(s_good.hits) >= len(points) // 2 and s_off.hits == []
    assert s_good.score - s_off.score > 0.4
    # A vague answer and an off-topic one both state nothing: on a single question their order
    # is noise near the bottom of the scale (two of these twelve swap); over the set the vague
    # answers score higher (next test).


def test_vague_ranks_above_off_topic_on_average(scorer):
    vague, off = [], []
    for index, (text, points, good, answer) in enumerate(HELD_OUT):
        question = Question(f"held-out-{index}", "held-out", text, good, tuple(points))
        vague.append(scorer.score(question, answer).score)
        off.append(scorer.score(question, OFF_TOPIC).score)
    assert sum(vague) > sum(off), (vague, off)


def test_mean_pooling_ignores_padding(scorer):
    alone = scorer.embed(["short text"])
    scorer._cache.clear()
    padded = scorer.embed(["short text", "a much longer text that forces padding in the batch"])
    assert (alone[0] - padded[0]).abs().max().item() < 1e-5
    assert abs(padded.norm(dim=-1) - 1).max().item() < 1e-5


def test_reference_answers_score_high_and_report(scorer):
    bank = load_bank()
    for q in bank[::8]:
        result = scorer.score(q, q.answer)
        assert result.score > 0.6 and result.hits, q.id
    report = scorer.score(bank[0], bank[0].answer).report(bank[0])
    assert "key points covered" in report and bank[0].answer in report


def test_scorer_refuses_bad_input(scorer):
    q = load_bank()[0]
    for bad in ("", "   ", None, 12):
        with pytest.raises(QuizError):
            scorer.score(q, bad)
    result = scorer.score(q, q.answer + " filler" * 1500)
    assert result.warnings and result.score > 0.5


# ---------------------------------------------------------------- labelled set (issue #18)
SALAD_MAX, NEGATED_MAX, CORRECT_MIN = 0.35, 0.35, 0.5


@pytest.fixture(scope="module")
def held_out(scorer):
    """The held-out labelled answers, their pieces embedded in one batched call (faster)."""
    from transformer_workbook.quiz.scorer import answer_pieces

    answers = [a for a in load_labelled(LABELLED) if a.split == "held-out"]
    texts = {p for a in answers for p in answer_pieces(a.text)}
    texts |= {k for a in answers for k in a.question.key_points}
    scorer.embed(sorted(texts))
    return [(a, scorer.score(a.question, a.text)) for a in answers]


def test_labelled_set_is_balanced_and_split():
    answers = load_labelled(LABELLED)
    questions = {a.question.id: a.split for a in answers}
    assert len(questions) >= 12 and len({q.split("-")[0] for q in questions}) >= 8
    assert set(questions.values()) == {"calibration", "held-out"}   # each question in one split
    for split in ("calibration", "held-out"):
        kinds = [a.kind for a in answers if a.split == split]
        assert all(kinds.count(k) >= 8 for k in ("correct", "partial", "salad", "negated"))
    assert all(a.covers == frozenset() for a in answers if a.kind in ("salad", "negated"))
    assert all(len(a.covers) == len(a.question.key_points) for a in answers
               if a.kind == "correct")


@pytest.mark.parametrize("kind, limit", [("salad", SALAD_MAX), ("negated", NEGATED_MAX)])
def test_salad_and_negated_answers_score_low(held_out, kind, limit):
    scores = sorted((r.score, a.question.id, a.text) for a, r in held_out if a.kind == kind)
    above = [s for s in scores if s[0] >= limit]
    # One of 32 may slip through (measured: one of each, the same two answers as when the
    # held-out split had 16; see docs/results/quiz-scorer.md).
    assert len(above) <= 1, above
    assert sum(s for s, *_ in scores) / len(scores) < 0.2, scores


def test_correct_answers_score_high(held_out):
    scores = [(r.score, len(r.hits), a.question.id) for a, r in held_out if a.kind == "correct"]
    assert all(s >= CORRECT_MIN for s, *_ in scores), scores
    assert sum(s for s, *_ in scores) / len(scores) > 0.75
    assert sum(h for _, h, _ in scores) >= 0.75 * sum(
        len(a.question.key_points) for a, _ in held_out if a.kind == "correct")


def test_key_point_precision_and_recall_on_held_out(scorer, held_out):
    stats = evaluate(scorer, [a for a, _ in held_out])
    assert stats["precision"] >= 0.7 and stats["recall"] >= 0.75, stats


def test_the_issue_example_gets_no_credit(scorer):
    q = next(q for q in load_bank() if q.id == "norm-residual-growth")
    result = scorer.score(q, "final layernorm output head pre-LN residual stream grows norm "
                             "scale unnormalised logits")
    assert result.hits == [] and result.score < 0.2, result.report()


def test_salad_and_negation_cues():
    from transformer_workbook.quiz.scorer import function_share, negated, split_answer

    assert function_share("dot product variance softmax saturation head size") == 0
    assert function_share("The scores are divided by the square root of the head size.") > 0.3
    assert negated("Pre-LN doesn't need warmup") and negated("it is not exact")
    assert not negated("the result is exact") and not negated("notes and nothingness")
    pieces = dict(split_answer("A is B, but C is not D. E grows."))
    assert pieces["but C is not D."] == "A is B, but C is not D." and "E grows." in pieces
    assert all(" E " not in p for p in pieces if p != "E grows.")   # no piece spans sentences
