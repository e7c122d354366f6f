"""Self-study interview quiz: question bank, embedding scorer, local progress, Anki export.

``workbook quiz`` in a terminal, :func:`quiz_widget` in a notebook. Heavy pieces (torch, the
MiniLM encoder, ipywidgets) load only when a function needs them.
"""
from .anki import export_anki
from .bank import (Question, QuizError, get_question, load_bank, questions_for, resolve_topic,
                   show_question, topics)
from .progress import Progress, progress_path
from .scorer import MAX_ANSWER_CHARS, Scorer, ScoreResult, clean_answer
from .widget import quiz_widget

__all__ = ["MAX_ANSWER_CHARS", "Progress", "Question", "QuizError", "ScoreResult", "Scorer",
           "clean_answer", "export_anki", "get_question", "load_bank",
           "progress_path", "questions_for", "quiz_widget", "resolve_topic",
           "show_question", "topics"]
