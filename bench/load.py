"""Many users at once: concurrent HTTP clients against `newsdesk serve` while another
process keeps rewriting the same index.

    python bench/load.py                            # 1 client, then 16, 60 s each
    python bench/load.py --clients 1 4 16 --seconds 30

It starts `newsdesk serve` on a free loopback port over `--index-dir` (built from the
demo collection the first time), and a writer that runs `newsdesk index update`
(twice) and `newsdesk index build` (once) in turn, each in its own process, for as long
as the clients ask. Each round of the writer edits one extra article, a harbour ferry
bulletin whose frequency alternates, so successive states really differ.

Each client asks questions in a loop over its own connection; every citation of every
answer (and each copy it names) is fetched back with `/v1/articles/{id}?start=&end=`
and must equal the quote. When the live state has moved on since the answer, the quote
is checked against the texts of the state the answer names, which the writer saved
right after making it. Prints JSON: per number of clients, the requests (questions),
errors (failed questions, failed fetches and wrong quotes), throughput, p50 and p95
latency of a question; the writes made; the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from index.db import read_manifest, read_texts

ROOT = Path(__file__).resolve().parents[1]
NEWSDESK = [sys.executable, "-m", "newsdesk"]
BULLETIN_ID = "bench-harbour-ferry"
FREQUENCIES = ("fifteen", "twenty")  # the bulletin's two versions
QUESTIONS = [
    "What did the Secretary General warn about?",
    "How many people were killed in the Mecca crane collapse?",
    "How many asylum seekers were rescued off Indonesia?",
    "What did New Zealand announce about its national flag?",
    "How many pilgrims died in the Hajj stampede?",
    "What did the Greek court rule about worship of ancient deities?",
    "How often will the harbour ferry run?",
    "What is the boiling point of mercury?",  # not in the collection: an abstention
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--seconds", type=float, default=60.0, help="Of asking, per run.")
    parser.add_argument("--index-dir", type=Path, default=ROOT / "bench-out" / "load-index")
    parser.add_argument("--no-writes", action="store_true", help="No writer process.")
    args = parser.parse_args()
    print(json.dumps(run(args.index_dir, args.clients, args.seconds, not args.no_writes), indent=2))


def run(index_dir: Path, clients: list[int], seconds: float, writes: bool) -> dict[str, Any]:
    bulletin = index_dir.with_name(f"{index_dir.name}-bulletin.jsonl")
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    writer = Writer(index_dir, bulletin)
    writer.write(0, "build" if read_manifest(index_dir) is None else "update")
    load_before = os.getloadavg()
    with serving(index_dir) as url, writer.running(writes):
        runs = [asking(url, n, seconds, writer) for n in clients]
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "runs": runs,
        "writes": {
            "done": writer.done,
            "failed": writer.failed,
            "states_seen": len(writer.texts),
            "seconds": [round(s, 1) for s in writer.seconds],
        },
    }


# --- the writer ------------------------------------------------------------------------


class Writer:
    """Rewrites the index in another process, round after round, and keeps the article
    texts of every state it made, for checking quotes from states already replaced."""

    def __init__(self, index_dir: Path, bulletin: Path) -> None:
        self.index_dir = index_dir
        self.bulletin = bulletin
        self.texts: dict[str, dict[str, str]] = {}  # state -> article id -> text
        self.done = 0
        self.failed: list[str] = []
        self.seconds: list[float] = []
        self._stop = threading.Event()

    def write(self, round_: int, command: str) -> None:
        frequency = FREQUENCIES[round_ % 2]
        record = {
            "id": BULLETIN_ID,
            "title": "Harbour ferry timetable changes",
            "date": "2024-03-04",
            "source": "Bench Bulletin",
            "text": (
                f"The harbour ferry will run every {frequency} minutes from Monday, the "
                "port authority said. The change follows complaints about crowded boats "
                "at peak hours."
            ),
        }
        self.bulletin.write_text(json.dumps(record) + "\n", encoding="utf-8")
        began = time.perf_counter()
        where = ["--index-dir", str(self.index_dir)]
        # --local: written by this other process, not handed to the server it loads
        local = ["--local"] if command == "update" else []
        done = subprocess.run(
            [*NEWSDESK, "index", command, *where, *local, "--demo", str(self.bulletin)],
            capture_output=True,
            text=True,
            check=False,
        )
        self.seconds.append(time.perf_counter() - began)
        if done.returncode != 0:
            self.failed.append(f"index {command}: exit {done.returncode}: {done.stderr[-500:]}")
            return
        self.done += 1
        self.remember()

    def remember(self) -> None:
        """The live state's texts: read before the next write can replace them."""
        found = read_texts(self.index_dir)
        assert found is not None
        state, articles = found
        if state not in self.texts:
            self.texts[state] = {a.id: a.text for a in articles.values()}

    @contextmanager
    def running(self, writes: bool) -> Iterator[None]:
        self.remember()
        thread = threading.Thread(target=self._loop, daemon=True)
        if writes:
            thread.start()
        try:
            yield
        finally:
            self._stop.set()
            if writes:
                thread.join()  # the write under way finishes: the index is left whole

    def _loop(self) -> None:
        round_ = 1
        while not self._stop.is_set():
            self.write(round_, "build" if round_ % 3 == 0 else "update")
            round_ += 1


# --- the server ------------------------------------------------------------------------


@contextmanager
def serving(index_dir: Path) -> Iterator[str]:
    """`newsdesk serve` over the index on a free loopback port, until the block ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [*NEWSDESK, "serve", "--index-dir", str(index_dir), "--port", str(port)]
    log = index_dir.with_name(f"{index_dir.name}-serve.log")
    with log.open("wb") as sink:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sink)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"newsdesk serve exited: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("newsdesk serve did not answer within 300 s")
            try:
                if httpx.get(f"{url}/v1/index/status", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# --- the clients -----------------------------------------------------------------------


@dataclass
class Tally:
    asked: int = 0
    latencies: list[float] = field(default_factory=list)  # of answered questions, s
    errors: list[str] = field(default_factory=list)
    checked: int = 0  # quotes equal to the text the live state returned
    later: list[tuple[str, str, int, int, str]] = field(default_factory=list)  # state moved on


def asking(url: str, clients: int, seconds: float, writer: Writer) -> dict[str, Any]:
    """`clients` threads asking for `seconds`, then every quote checked."""
    tallies = [Tally() for _ in range(clients)]
    began = time.perf_counter()
    deadline = began + seconds
    threads = [
        threading.Thread(target=_client, args=(url, number, deadline, tally))
        for number, tally in enumerate(tallies)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    latencies = [s for t in tallies for s in t.latencies]
    errors = [e for t in tallies for e in t.errors]
    from_states = 0
    for state, article_id, start, end, quote in (q for t in tallies for q in t.later):
        text = writer.texts.get(state, {}).get(article_id)
        if text is None:
            errors.append(f"state {state} (article {article_id}) was never seen by the writer")
        elif text[start:end] != quote:
            errors.append(f"{article_id}[{start}:{end}] in {state} is not {quote!r}")
        else:
            from_states += 1
    p50, p95 = np.percentile(latencies, [50, 95]) if latencies else (float("nan"),) * 2
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": sum(t.asked for t in tallies),
        "errors": len(errors),
        "error_samples": errors[:5],
        "throughput_rps": round(len(latencies) / elapsed, 2),
        "p50_ms": round(float(p50) * 1000, 1),
        "p95_ms": round(float(p95) * 1000, 1),
        "quotes_checked_live": sum(t.checked for t in tallies),
        "quotes_checked_from_their_state": from_states,
    }


def _client(url: str, number: int, deadline: float, tally: Tally) -> None:
    asked = number  # clients start at different questions
    with httpx.Client(base_url=url, timeout=120) as http:
        while time.perf_counter() < deadline:
            question = QUESTIONS[asked % len(QUESTIONS)]
            asked += 1
            began = time.perf_counter()
            tally.asked += 1
            try:
                reply = http.post("/v1/ask", json={"question": question})
            except httpx.HTTPError as exc:
                tally.errors.append(f"{question!r}: {type(exc).__name__}: {exc}")
                continue
            if reply.status_code != 200:
                tally.errors.append(f"{question!r}: HTTP {reply.status_code}: {reply.text[:300]}")
                continue
            tally.latencies.append(time.perf_counter() - began)
            answer = reply.json()
            for citation in answer["citations"]:
                for quote in [citation, *citation.get("also", [])]:
                    _check(http, answer["index_version"], quote, tally)


def _check(http: httpx.Client, state: str, quote: dict[str, Any], tally: Tally) -> None:
    """The quote against the live text; kept for later when the state has moved on."""
    article_id, start, end = quote["article_id"], quote["start"], quote["end"]
    try:
        reply = http.get(f"/v1/articles/{article_id}", params={"start": start, "end": end})
    except httpx.HTTPError as exc:
        tally.errors.append(f"fetching {article_id}: {type(exc).__name__}: {exc}")
        return
    found = reply.json() if reply.status_code == 200 else {}
    if found.get("index_version") != state:  # replaced since (404 or 422 if it changed)
        tally.later.append((state, article_id, start, end, quote["text"]))
    elif found["span"]["text"] != quote["text"]:
        tally.errors.append(f"{article_id}[{start}:{end}] is not {quote['text']!r}")
    else:
        tally.checked += 1


if __name__ == "__main__":
    main()
