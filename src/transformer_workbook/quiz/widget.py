"""The quiz as a notebook widget (ipywidgets)."""
from __future__ import annotations

import html

from .bank import QuizError


def quiz_widget(topic: str | None = None, n: int = 5, *, seed: int | None = None, scorer=None,
                progress=None):
    """Return a widget that asks ``n`` questions (weak topics first) and scores the answers."""
    import ipywidgets as w

    from .progress import Progress, describe_mastery
    from .scorer import Scorer

    progress = progress if progress is not None else Progress()
    chosen = progress.choose(n, topic, seed=seed)          # raises QuizError for a bad topic
    if not chosen:
        raise QuizError("no questions to ask")
    scorer = scorer if scorer is not None else Scorer()
    state = {"i": 0}
    header = w.HTML()
    box = w.Textarea(placeholder="Type your answer here", layout=w.Layout(width="95%",
                                                                          height="110px"))
    submit, skip = w.Button(description="Score my answer", button_style="primary"), \
        w.Button(description="Next question")
    out = w.Output()
    with out:
        for message in progress.messages:
            print("warning:", message)

    def show():
        q = chosen[state["i"]]
        header.value = (f"<b>[{state['i'] + 1}/{len(chosen)}] ({q.topic})</b> "
                        f"{html.escape(q.question)}")
        box.value = ""

    def on_submit(_):
        q = chosen[state["i"]]
        out.clear_output()
        with out:
            try:
                result = scorer.score(q, box.value)
            except QuizError as err:
                print(f"{err}.")               # the text stays in the box: nothing is lost
                return
            print(result.report(q))
            try:
                progress.record(q, result.score, box.value)
            except OSError as err:          # the answer stays in the box
                print(f"warning: could not save progress ({err})")

    def on_next(_):
        out.clear_output()
        if state["i"] + 1 < len(chosen):
            state["i"] += 1
            show()
        else:
            mastery = progress.topic_mastery()
            asked = [f"{t}: {describe_mastery(m)}" for t, m in mastery.items() if m.score is not None]
            unasked = len(mastery) - len(asked)
            summary = "; ".join(asked + ([f"{unasked} topic(s) not yet asked"] if unasked else []))
            header.value = ("<b>Done.</b> Run the widget again for more questions.<br>"
                            f"Your topics: {html.escape(summary)}")
            submit.disabled = skip.disabled = True

    submit.on_click(on_submit)
    skip.on_click(on_next)
    show()
    return w.VBox([header, box, w.HBox([submit, skip]), out])
