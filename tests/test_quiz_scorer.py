"""The quiz scorer on a held-out set: good answers above vague ones above off-topic ones.

None of these questions is in the bank, and none of the answers was used to choose the scorer's
constants (those were set on the bank's own reference answers).
"""
import pytest

from transformer_workbook.quiz import Question, QuizError, Scorer, load_bank

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
    assert s_good.score > s_vague.score > s_off.score, (text, s_good.score, s_vague.score,
                                                        s_off.score)
    assert len(s_good.hits) >= len(points) // 2 and s_off.hits == []
    assert s_good.score - s_off.score > 0.4


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
