"""``workbook quiz [--topic T] [--n N] [--export-anki PATH]``: a self-study quiz in the terminal."""
from __future__ import annotations

import argparse
import sys

from .bank import QuizError, questions_for, resolve_topic, topics

SKIP, QUIT = {"skip", "s", ":skip"}, {"quit", "q", ":quit", "exit"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "quiz", help="self-study interview quiz scored against key points (offline)",
        description="Ask interview questions, score free-text answers against each question's "
                    "key points with the packaged MiniLM encoder, and keep local progress.")
    p.add_argument("--topic", help="only ask questions on this topic (see --list-topics)")
    p.add_argument("--n", type=int, default=5, help="number of questions (default 5)")
    p.add_argument("--export-anki", metavar="PATH",
                   help="write the questions (of --topic, or all) as an Anki CSV and exit")
    p.add_argument("--list-topics", action="store_true", help="list topics and your progress")
    p.add_argument("--seed", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def _err(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def run(args, *, input_fn=input, scorer=None) -> int:
    from .progress import Progress, describe_mastery

    try:
        topic = resolve_topic(args.topic) if args.topic is not None else None
    except QuizError as err:
        return _err(str(err))
    if args.export_anki:
        from .anki import export_anki

        try:
            path = export_anki(args.export_anki, questions_for(topic))
        except OSError as err:
            return _err(f"could not write the Anki export: {err}")
        print(f"wrote {len(questions_for(topic))} cards to {path} (Anki: File > Import)")
        return 0
    if args.n is None or args.n < 1:
        return _err(f"--n must be at least 1, got {args.n}")

    try:
        progress = Progress()
    except OSError as err:
        return _err(f"could not open the progress file: {err}")
    for message in progress.messages:
        print(f"warning: {message}", file=sys.stderr)
    if args.list_topics:
        for name, mastery in progress.topic_mastery().items():
            print(f"{name:22s} {mastery.total:2d} questions  mastery {describe_mastery(mastery)}")
        return 0

    if scorer is None:
        from .scorer import Scorer

        scorer = Scorer()
    chosen = progress.choose(args.n, topic, seed=args.seed)
    print(f"{len(chosen)} question(s){' on ' + topic if topic else ''}. Answer in a sentence or "
          "a few; 'skip' skips, 'quit' stops (progress is saved after every answer).")
    done = 0
    for number, question in enumerate(chosen, 1):
        print(f"\n[{number}/{len(chosen)}] ({question.topic}) {question.question}")
        while True:
            try:
                answer = input_fn("> ")
            except EOFError:
                print("\nend of input: stopping; progress so far is saved.")
                return 0
            except KeyboardInterrupt:
                print("\ninterrupted: progress so far is saved.")
                return 130
            word = answer.strip().lower() if isinstance(answer, str) else ""
            if word in QUIT:
                print(f"stopped after {done} answer(s); progress is saved in {progress.path}")
                return 0
            if word in SKIP:
                print("skipped. Reference answer:\n" + question.answer)
                break
            try:
                result = scorer.score(question, answer)
            except QuizError as err:
                print(f"{err}. Try again ('skip' to skip).")
                continue
            print(result.report(question))
            try:
                progress.record(question, result.score, answer)
            except OSError as err:
                print(f"warning: could not save progress ({err}); your answer was:\n{answer}",
                      file=sys.stderr)
            done += 1
            break
    asked = {t: m for t, m in progress.topic_mastery().items() if m.score is not None}
    weakest = sorted(asked.items(), key=lambda kv: kv[1].score)[:3]
    if weakest:
        print("\nweakest topics so far: "
              + ", ".join(f"{t} ({describe_mastery(m)})" for t, m in weakest))
    unasked = len(topics()) - len(asked)
    if unasked:
        print(f"{unasked} topic(s) not yet asked (see --list-topics)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="workbook")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["quiz", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
