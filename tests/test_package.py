"""Unit tests of the student package."""
import json

import matplotlib

matplotlib.use("agg")
import pytest
import torch

from conftest import ROOT
from transformer_workbook import by_size, run_size, seed_everything
from transformer_workbook.checks import check, check_close, check_finite, check_shape


def test_run_size_reads_the_environment(monkeypatch):
    monkeypatch.setenv("WORKBOOK_SIZE", "grade")
    assert run_size() == "grade" and by_size(grade=1, ci=2, full=3) == 1
    monkeypatch.delenv("WORKBOOK_SIZE")
    assert run_size() == "full" and by_size(grade=1, ci=2, full=3) == 3
    monkeypatch.setenv("WORKBOOK_SIZE", "huge")
    with pytest.raises(ValueError, match="not a known size"):
        run_size()


def test_seed_everything_repeats_draws():
    seed_everything(3)
    a = torch.randn(5)
    seed_everything(3)
    assert torch.equal(a, torch.randn(5))


def test_checks_teach_on_failure():
    with pytest.raises(AssertionError, match=r"largest difference 1 at index \(1,\).*did you"):
        check_close(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 3.0]), "x", "did you?")
    with pytest.raises(AssertionError, match=r"has shape \(2,\), expected \(3,\)"):
        check_close(torch.zeros(2), torch.zeros(3), "x")
    with pytest.raises(AssertionError, match="1 NaN"):
        check_finite(torch.tensor([0.0, float("nan")]), "w")
    with pytest.raises(AssertionError, match="expected"):
        check_shape(torch.zeros(2, 2), (2, 3), "w")
    with pytest.raises(AssertionError, match="boom"):
        check(False, "boom")
    check_close(torch.tensor([1.0]), torch.tensor([1.0 + 1e-9]), "x")


def test_reviews_are_binarised_with_a_fixed_disjoint_split():
    from transformer_workbook import load_reviews

    train, test = load_reviews("movie", "train"), load_reviews("movie", "test")
    everything = load_reviews("movie", "all")
    assert len(train) + len(test) == len(everything) > 10_000
    from collections import Counter

    repeated = {t for t, n in Counter(everything.texts).items() if n > 1}
    assert set(train.texts) & set(test.texts) <= repeated, "train and test share snippets"
    assert set(train.labels) == {0, 1} and 0.4 < train.positive_fraction() < 0.6
    assert all((s > 0) == bool(y) for s, y in zip(test.scores, test.labels))
    assert load_reviews("movie", "test").texts == test.texts, "the split must be repeatable"
    product = load_reviews("product", "all")
    assert 3000 < len(product) <= 3708
    with pytest.raises(ValueError, match="domain"):
        load_reviews("tweets")


def test_lexicon_has_sentiment_words():
    from transformer_workbook import load_lexicon

    lexicon = load_lexicon()
    assert lexicon["good"] > 0 > lexicon["bad"] and len(lexicon) > 7000


def test_corpus_is_plain_text():
    from transformer_workbook import load_corpus

    hamlet = load_corpus("shakespeare", plays=["hamlet"])
    assert "HAMLET:" in hamlet and "**" not in hamlet and "#" not in hamlet
    assert len(load_corpus()) > 4_000_000
    with pytest.raises(ValueError, match="no such play"):
        load_corpus(plays=["hamlet-2"])


def test_encoder_and_decoder_load_offline():
    from transformer_workbook import load_decoder, load_encoder

    tokenizer, model = load_encoder()
    assert model.config.num_hidden_layers == 6 and model.config.num_attention_heads == 12
    batch = tokenizer("a fine film", return_tensors="pt")
    out = model(**batch, output_attentions=True)
    assert out.attentions[0].shape[1] == 12, "eager attention must return weights"


def test_decoder_is_dequantised_once_then_loaded_from_the_cache(tmp_path, monkeypatch):
    """The first load de-quantises the GGUF file and saves the result; the next load reads the
    saved copy and gives exactly the same model."""
    import time

    from transformer_workbook import load_decoder
    from transformer_workbook.models import decoder_file, dequantised_cache

    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path))
    tokenizer, decoder = load_decoder()
    cfg = decoder.config
    assert cfg.num_key_value_heads < cfg.num_attention_heads, "SmolLM2 uses grouped-query attention"
    batch = tokenizer("To be or not", return_tensors="pt")
    with torch.no_grad():
        first = decoder(**batch).logits
    assert torch.isfinite(first).all()
    saved = dequantised_cache(decoder_file())
    assert (saved / "config.json").is_file() and saved.parent == tmp_path / "dequantised"
    start = time.perf_counter()
    tokenizer2, decoder2 = load_decoder()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        again = decoder2(**tokenizer2("To be or not", return_tensors="pt")).logits
    assert torch.equal(first, again), "the cached copy must be the same model"
    assert tokenizer2.encode("To be or not") == tokenizer.encode("To be or not")
    assert seconds < 20, f"loading the cached copy took {seconds:.0f} s"


def test_dequantised_copy_is_named_by_content_not_date(tmp_path, monkeypatch):
    """A reinstalled package gives the GGUF file a new date: the cache folder must stay the same
    (each copy is 0.5 GB), and a copy named the old way (by date) is removed when a new one is
    saved."""
    import os
    import shutil

    from transformer_workbook.models import _remove_dated_copies, decoder_file, dequantised_cache

    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path / "cache"))
    first, second = tmp_path / "a" / decoder_file().name, tmp_path / "b" / decoder_file().name
    for path, when in ((first, 1_700_000_000), (second, 1_800_000_000)):
        path.parent.mkdir()
        shutil.copyfile(decoder_file(), path)
        os.utime(path, (when, when))
    assert dequantised_cache(first) == dequantised_cache(second)
    target = dequantised_cache(first)
    dated = target.parent / f"{first.stem}-{first.stat().st_size}-1700000000"
    other = target.parent / "some-other-model-1-1700000000"
    for folder in (target, dated, other):
        folder.mkdir(parents=True)
    _remove_dated_copies(target)
    assert target.is_dir() and other.is_dir() and not dated.exists()


def test_heatmap_and_explorer():
    from transformer_workbook import attention_explorer, attention_heatmap

    w = torch.softmax(torch.randn(3, 3), -1)
    ax = attention_heatmap(w, ["a", "b", "c"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="index a single batch element"):
        attention_heatmap(torch.zeros(1, 3, 3), ["a", "b", "c"])
    layers = tuple(torch.softmax(torch.randn(1, 2, 3, 3), -1) for _ in range(4))
    box = attention_explorer(layers, ["a", "b", "c"])
    assert box.layer_slider.max == 3 and box.head_slider.max == 1
    box.layer_slider.value = 2   # redraw must not fail
    with pytest.raises(ValueError, match="attn_implementation='eager'"):
        attention_explorer((None,), ["a"])


def test_mutants_apply_exactly_once():
    from conftest import COURSE
    from workbook_instructor.course import Mutant
    from workbook_instructor.samples import apply_mutant, reference_notebooks

    ref = reference_notebooks(COURSE, "01-attention")
    code = "".join("".join(c["source"]) for nb in ref.values() for c in nb["cells"]
                   if c["cell_type"] == "code")
    assert "BEGIN SOLUTION" not in code and "raise NotImplementedError()" not in code
    bad = Mutant("x", "m", "sdpa", "this text is nowhere", "", [])
    with pytest.raises(ValueError, match="occurs 0 times"):
        apply_mutant(ref, bad)


def test_workbook_time_records_a_run_without_touching_the_source(tmp_path):
    """`workbook time` (maintainers) writes the executed copy and times.jsonl into --out only."""
    import nbformat
    from workbook_instructor.timing import time_notebook

    import psutil

    def kernels():      # other tests in this worker (nbval) may hold kernels of their own
        return {p.pid for p in psutil.Process().children(recursive=True)
                if "ipykernel" in " ".join(p.cmdline())}

    kernels_before = kernels()
    source = tmp_path / "solutions" / "99-tiny" / "99-tiny.ipynb"
    source.parent.mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import os\nsize = os.environ['WORKBOOK_SIZE']\nprint(size)"),
        nbformat.v4.new_code_cell("raise ValueError('cell two broke')")])
    nbformat.write(nb, source)
    before = source.read_bytes()
    record = time_notebook(source, size="grade", out=tmp_path / "times", root=tmp_path)
    assert source.read_bytes() == before, "the solution notebook must not be rewritten"
    copy = nbformat.read(tmp_path / "times" / "99-tiny-grade.ipynb", as_version=4)
    assert copy.cells[0].outputs[0]["text"].strip() == "grade"
    assert record["error"] and "cell two broke" in record["error"], record["error"]
    assert record["wall_s"] > 0 and record["machine"]["cores"] >= 1
    logged = [json.loads(line) for line in (tmp_path / "times" / "times.jsonl").read_text().splitlines()]
    assert logged == [record]
    assert not kernels() - kernels_before, ("the kernel outlived its notebook (nbclient shuts down "
                                            "only kernels it created; execution.execute must ask it to)")
