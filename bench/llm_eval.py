"""Citation quality of generated answers against the extractive ones, in one run.

    python bench/llm_eval.py --limit 100 --json                 # a scripted model
    python bench/llm_eval.py --limit 100 --base-url URL --model NAME   # a real endpoint
    python bench/llm_eval.py --k 4 ...   # fewer passages: a shorter prompt for a slow model

Runs `newsdesk eval` (the SQuAD subset) with the extractive answerer, then with
`--answerer llm`. Without --base-url the model is a scripted policy on a local
OpenAI-compatible server (bench/scripted_llm.py): it answers with the passage sentence
sharing most terms with the question, cites the wrong key on every fifth question and
adds an invented sentence on every seventh, so the run shows how many of those the
support check stops. With --base-url, any real model (e.g. `python -m llama_cpp.server`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "squad-dev-subset"
PASSAGE = re.compile(r'<passage key="(\d+)"[^>]*>\n(.*?)\n</passage>', re.DOTALL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--base-url", help="A real OpenAI-compatible endpoint instead.")
    parser.add_argument("--model", default="scripted")
    parser.add_argument(
        "--k", type=int, default=10, help="Passages per question (the prompt's size)."
    )
    parser.add_argument("--index-dir", type=Path, default=ROOT / "bench-out" / "eval-index")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from bench.scripted_llm import ScriptedLLM
    from eval.run import run_eval
    from newsdesk.settings import Settings

    articles = [DATA / "articles.jsonl"]
    questions = DATA / "questions.jsonl"
    results: dict[str, Any] = {}
    policy = Policy()
    with ScriptedLLM(responder=policy.reply) as scripted:
        base_url = args.base_url or scripted.base_url
        for name, answer in (("extractive", {}), ("llm", {"answerer": "llm"})):
            settings = Settings(
                index_dir=args.index_dir,
                answer=answer,
                retrieval={"k": args.k},
                llm={"base_url": base_url, "model": args.model, "timeout": 300, "max_retries": 0},
            )
            report = run_eval(questions, articles, settings, limit=args.limit).report
            results[name] = {
                "citation": report["citation"],
                "abstention": report["abstention"],
                "answer": {k: report["answer"][k] for k in ("answered_rate", "contains_gold")},
                "latency_ms": report["latency_ms"],
                **({"llm": report["llm"]} if "llm" in report else {}),
            }
    if not args.base_url:
        results["scripted_model"] = policy.counts
    print(json.dumps(results, indent=2))


class Policy:
    """A stand-in model: quotes the passage sentence that best matches the question,
    with deliberate faults so the check has something to catch."""

    def __init__(self) -> None:
        self.turn = itertools.count(1)
        self.counts = {"replies": 0, "refusals": 0, "wrong_key": 0, "invented_sentence": 0}

    def reply(self, prompt: str) -> Any:
        from bench.scripted_llm import Plan
        from index.sentences import sentence_spans
        from index.text import tokenize
        from rag.types import CANNOT_ANSWER

        turn = next(self.turn)
        self.counts["replies"] += 1
        question = prompt.rsplit("Question:", 1)[-1].strip()
        terms = set(tokenize(question))
        passages = [(int(key), text) for key, text in PASSAGE.findall(prompt)]
        best = (0.0, 0, "")
        for key, text in passages:
            for start, end in sentence_spans(text):
                sentence = text[start:end]
                overlap = len(terms & set(tokenize(sentence))) / max(len(terms), 1)
                best = max(best, (overlap, key, sentence))
        overlap, key, sentence = best
        if overlap < 0.5 or not passages:
            self.counts["refusals"] += 1
            return Plan(text=CANNOT_ANSWER)
        if turn % 5 == 0 and len(passages) > 1:
            key = key % len(passages) + 1
            self.counts["wrong_key"] += 1
        text = f"{sentence.rstrip('.')} [{key}]."
        if turn % 7 == 0:
            text += f" This was first reported on 3 May 1999 in Geneva [{key}]."
            self.counts["invented_sentence"] += 1
        return Plan(text=text)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        main()
