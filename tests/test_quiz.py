"""The self-study quiz without the encoder: bank, bad input, progress file, Anki export, CLI."""
import argparse
import csv
import json
import re
from pathlib import Path

import pytest

from transformer_workbook.quiz import (MAX_ANSWER_CHARS, Progress, QuizError, ScoreResult,
                                       clean_answer, export_anki, get_question, load_bank,
                                       questions_for, resolve_topic, topics)
from transformer_workbook.quiz import cli as quiz_cli
from transformer_workbook.quiz import progress as progress_mod

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


class FakeScorer:
    """Same input handling as the real scorer; the score is the share of key-point words used."""

    def score(self, question, answer):
        text, warnings = clean_answer(answer)
        words = set(re.findall(r"\w+", text.lower()))
        hits = [p for p in question.key_points if len(set(p.lower().split()) & words) >= 3]
        misses = [p for p in question.key_points if p not in hits]
        return ScoreResult(len(hits) / len(question.key_points), hits, misses,
                           [1.0 if p in hits else 0.0 for p in question.key_points], warnings)


def quiz_args(**kw):
    base = dict(topic=None, n=2, export_anki=None, list_topics=False, seed=0)
    base.update(kw)
    return argparse.Namespace(**base)


def feed(*lines):
    it = iter(lines)

    def input_fn(prompt=""):
        try:
            return next(it)
        except StopIteration:
            raise EOFError from None
    return input_fn


# ---------------------------------------------------------------- the bank
def test_bank_has_enough_questions_and_rubrics():
    bank = load_bank()
    assert len(bank) >= 40
    assert len({q.id for q in bank}) == len(bank)
    for q in bank:
        assert q.question.endswith(("?", ".")) and len(q.answer) > 100, q.id
        assert 3 <= len(q.key_points) <= 5, q.id
        assert "\n" not in q.question


def test_bank_covers_the_issue_topics():
    expected = {"attention", "qkv", "complexity", "architectures", "positions", "normalization",
                "diagnostics", "kv-cache", "flash-attention", "efficient-attention",
                "distillation", "peft", "serving", "auditability", "scaling-laws", "moe",
                "icl-superposition", "multimodal"}
    assert expected <= set(topics())


def test_notebook_renders_every_bank_question_once():
    import nbformat

    nb = nbformat.read(ROOT / "solutions" / "08-interview" / "08-interview.ipynb", as_version=4)
    shown = re.findall(r'show_question\("([^"]+)"\)', "\n".join(c.source for c in nb.cells))
    assert sorted(shown) == sorted(q.id for q in load_bank())


def test_topic_lookup_is_forgiving_but_clear():
    assert resolve_topic("  KV-Cache ") == "kv-cache"
    with pytest.raises(QuizError, match="Did you mean 'attention'"):
        resolve_topic("atention")
    for bad in ("nonsense-topic", "", None, 3):
        with pytest.raises(QuizError, match="topic"):
            resolve_topic(bad)
    with pytest.raises(QuizError, match="no question with id"):
        get_question("kv-cache-sise")


# ---------------------------------------------------------------- bad answers
@pytest.mark.parametrize("answer", ["", "   \n\t ", "?!...", None, 42, 3.5, ["a list"],
                                    {"an": "answer"}, b"\xff\xfe not utf8"])
def test_unusable_answers_are_refused_with_a_message(answer):
    with pytest.raises(QuizError) as err:
        clean_answer(answer)
    assert len(str(err.value)) > 20


def test_bytes_and_long_answers_are_accepted_with_notes():
    assert clean_answer("  keys and values \x00 ".encode())[0] == "keys and values"
    long = "attention " * 2000
    text, warnings = clean_answer(long)
    assert len(text) == MAX_ANSWER_CHARS and "only the first" in warnings[0]


# ---------------------------------------------------------------- progress
def test_progress_round_trip_and_atomic_file(data_home):
    p = Progress()
    q = get_question("kv-mqa-gqa")
    p.record(q, 0.75, "my answer")
    assert p.path == data_home / "progress.json"
    again = Progress()
    assert again.question_score("kv-mqa-gqa") == 0.75
    assert again.data["questions"]["kv-mqa-gqa"]["attempts"][0]["answer"] == "my answer"
    assert [f.name for f in data_home.iterdir()] == ["progress.json"]   # no temp files left


def test_failed_write_leaves_the_old_file_intact(data_home, monkeypatch):
    p = Progress()
    p.record(get_question("qkv-roles"), 0.5, "first")
    before = p.path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError("disk full")
    import transformer_workbook.storage as storage
    monkeypatch.setattr(storage.os, "fsync", disk_full)   # fails half-way through the write
    with pytest.raises(OSError, match="disk full"):
        p.record(get_question("qkv-roles"), 0.9, "second")
    assert p.path.read_bytes() == before
    assert [f.name for f in data_home.iterdir()] == ["progress.json"]


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00", b"[1, 2, 3]",
                                     b'{"version": 1, "questions": {"x": {"attempts": "no"}}}',
                                     b'{"version": 99, "questions": {}}'])
def test_corrupted_progress_is_backed_up_not_lost(data_home, content):
    data_home.mkdir(parents=True, exist_ok=True)
    (data_home / "progress.json").write_bytes(content)
    p = Progress()
    assert p.data["questions"] == {}
    backups = list(data_home.glob("progress.json.corrupt-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == content
    assert "kept as" in p.messages[0]
    p.record(get_question("qkv-roles"), 0.5)
    assert json.loads(p.path.read_text())["questions"]["qkv-roles"]["attempts"][0]["score"] == 0.5
    # A second corruption does not overwrite the first backup.
    (data_home / "progress.json").write_bytes(b"garbage again")
    Progress()
    assert len(list(data_home.glob("progress.json.corrupt-*"))) == 2


def test_weak_topics_are_favoured():
    p = Progress()
    for q in load_bank():
        p.record(q, 0.0 if q.topic == "moe" else 1.0, save=False)
    picks = [q.topic for seed in range(20) for q in p.choose(3, seed=seed)]
    assert picks.count("moe") / len(picks) > 0.3          # 2 of 48 questions, picked far more
    assert {q.topic for q in p.choose(5, "peft", seed=1)} == {"peft"}
    assert len(p.choose(100, "moe")) == len(questions_for("moe"))


# ---------------------------------------------------------------- Anki export
def test_anki_export_is_importable_csv(tmp_path):
    path = export_anki(tmp_path / "cards.csv", questions_for("kv-cache"))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[:3] == ["#separator:Comma", "#html:true", "#tags column:3"]
    rows = list(csv.reader(lines[3:]))
    assert len(rows) == len(questions_for("kv-cache")) and all(len(r) == 3 for r in rows)
    assert rows[0][2] == "transformer-workbook kv-cache"
    assert "<li>" in rows[0][1] and "Key points" in rows[0][1]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_anki(tmp_path / "missing" / "cards.csv", questions_for("moe"))


# ---------------------------------------------------------------- CLI
def test_cli_parser_registers_quiz():
    from transformer_workbook.cli import build_parser

    args = build_parser().parse_args(["quiz", "--topic", "moe", "--n", "3",
                                      "--export-anki", "x.csv"])
    assert (args.topic, args.n, args.export_anki, args.func) == ("moe", 3, "x.csv", quiz_cli.run)


def test_cli_session_handles_bad_input_and_saves(capsys, data_home):
    code = quiz_cli.run(quiz_args(topic="kv-cache", n=2),
                        input_fn=feed("", "   ", "x" * 10 + " " + "kv " * 3000,
                                      "skip"), scorer=FakeScorer())
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("the answer is empty") == 2
    assert "only the first" in out and "reference answer:" in out and "skipped" in out
    saved = json.loads((data_home / "progress.json").read_text())
    (entry,) = saved["questions"].values()
    assert len(entry["attempts"][0]["answer"]) > MAX_ANSWER_CHARS     # the full text is kept


def test_cli_unknown_topic_and_bad_n(capsys):
    assert quiz_cli.run(quiz_args(topic="kv-cach"), scorer=FakeScorer()) == 2
    err = capsys.readouterr().err
    assert "unknown topic 'kv-cach'" in err and "Did you mean 'kv-cache'" in err
    assert quiz_cli.run(quiz_args(n=0), scorer=FakeScorer()) == 2
    assert "--n must be at least 1" in capsys.readouterr().err


def test_cli_quit_eof_and_export(capsys, tmp_path, data_home):
    assert quiz_cli.run(quiz_args(n=3), input_fn=feed("quit"), scorer=FakeScorer()) == 0
    assert quiz_cli.run(quiz_args(n=3), input_fn=feed(), scorer=FakeScorer()) == 0
    assert "end of input" in capsys.readouterr().out
    assert quiz_cli.run(quiz_args(export_anki=str(tmp_path), topic="moe")) == 0
    assert (tmp_path / "transformer-workbook-quiz.csv").exists()
    assert quiz_cli.run(quiz_args(export_anki=str(tmp_path / "no" / "x.csv"))) == 2


def test_cli_reports_a_corrupted_file(capsys, data_home):
    data_home.mkdir(parents=True, exist_ok=True)
    (data_home / "progress.json").write_text("{truncated")
    assert quiz_cli.run(quiz_args(list_topics=True)) == 0
    assert "was unusable" in capsys.readouterr().err
    assert list(data_home.glob("progress.json.corrupt-*"))


def test_widget_builds_and_keeps_text_on_bad_input(data_home):
    from transformer_workbook.quiz import quiz_widget

    box = quiz_widget(topic="moe", n=1, seed=0, scorer=FakeScorer())
    header, textarea, buttons, out = box.children
    assert "moe" in header.value
    textarea.value = "   "
    buttons.children[0].click()                  # score an empty answer: refused, text kept
    assert textarea.value == "   " and not (data_home / "progress.json").exists()
    textarea.value = "a router picks the top k experts for each token"
    buttons.children[0].click()
    assert (data_home / "progress.json").exists()
    buttons.children[1].click()
    assert "Done" in header.value
    assert "moe: " in header.value and f"{len(topics()) - 1} topic(s) not yet asked" in header.value
    with pytest.raises(QuizError):
        quiz_widget(topic="not-a-topic", scorer=FakeScorer())


# ---------------------------------------------------------------- progress display (issue #18)
def test_topics_never_asked_read_not_yet_asked(capsys, data_home):
    from transformer_workbook.quiz.progress import describe_mastery

    p = Progress()
    p.record(get_question("moe-routing"), 0.5, "a router picks experts")
    mastery = p.topic_mastery()
    assert mastery["moe"] == (0.5, 1, len(questions_for("moe")))
    assert mastery["peft"] == (None, 0, len(questions_for("peft")))
    assert describe_mastery(mastery["peft"]) == "not yet asked"
    assert describe_mastery(mastery["moe"]).startswith("50% (1 of ")
    assert quiz_cli.run(quiz_args(list_topics=True)) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "not yet asked" in lines["peft"] and "%" not in lines["peft"], lines["peft"]
    assert "50%" in lines["moe"] and "not yet asked" not in lines["moe"], lines["moe"]
    # The end of a session names only topics that were asked, and counts the others.
    assert quiz_cli.run(quiz_args(topic="moe", n=1), input_fn=feed("router top k experts"),
                        scorer=FakeScorer()) == 0
    out = capsys.readouterr().out
    summary = out[out.index("weakest topics"):]
    assert "moe (" in summary and "peft" not in summary
    assert f"{len(topics()) - 1} topic(s) not yet asked" in out
