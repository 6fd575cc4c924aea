"""A fake Perspective API endpoint on 127.0.0.1, scripted request by request (for the scorer
tests and the reliability suite's fault tests)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def word_toxicity(text: str) -> float:
    """A deterministic stand-in score of a text."""
    return round((sum(map(ord, text)) % 97) / 97, 4)


class FaultyPerspective:
    """Answers POSTs following `plan`: one step per request, then `then` for the rest.
    A step is an HTTP status, "slow" (sleeps past the client's timeout) or "garbage" (200 with
    a body that is no score). Successful answers score a text with `score`."""

    def __init__(
        self, plan: list[int | str], then: int | str = 200, slow_seconds: float = 1.5,
        score: Callable[[str], float] = word_toxicity,
    ) -> None:
        self.plan, self.then, self.slow_seconds, self.score = list(plan), then, slow_seconds, score
        self.requests = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests += 1
                    step = outer.plan.pop(0) if outer.plan else outer.then
                if step == "slow":
                    time.sleep(outer.slow_seconds)  # the client has given up by now
                    return
                status = 200 if step == "garbage" else int(step)
                self.send_response(status)
                self.end_headers()
                if step == "garbage":
                    self.wfile.write(b'{"attributeScores": {}}')
                elif status == 200:
                    value = outer.score(body["comment"]["text"])
                    self.wfile.write(json.dumps({"attributeScores": {"TOXICITY": {"summaryScore": {"value": value}}}})
                                     .encode())

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1alpha1/comments:analyze"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _toxicity(text: str) -> float:
    return round((sum(map(ord, text)) % 97) / 97, 4)
