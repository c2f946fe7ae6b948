"""``wait_until_ready`` against a real HTTP server on 127.0.0.1 whose answers name their worker."""

import http.server
import json
import threading

import pytest

from labeling.serve.run import wait_until_ready


@pytest.fixture
def scripted_server():
    """A server answering /readyz from a script of (worker, status); the last entry repeats."""
    script: list[tuple[str, int]] = []
    answered: list[tuple[str, int]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            worker, status = script[min(len(answered), len(script) - 1)]
            answered.append((worker, status))
            body = json.dumps({"status": "ready" if status == 200 else "not ready", "model_version": "",
                               "detail": "", "worker": worker}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", script, answered
    server.shutdown()
    server.server_close()


def test_a_run_of_200s_from_one_worker_is_not_every_worker_ready(scripted_server):
    url, script, answered = scripted_server
    # worker a is ready 8 times in a row while b, still loading, has not been reached; then b
    # answers 503 twice, then 200
    script += [("a", 200)] * 8 + [("b", 503)] * 2 + [("b", 200)]
    assert wait_until_ready(url, 2, timeout=30)
    assert answered[-1] == ("b", 200) and len(answered) == 11
    answered.clear()
    assert wait_until_ready(url, 1, timeout=30) and len(answered) == 1


def test_not_ready_in_time_or_not_alive_is_false(scripted_server):
    url, script, answered = scripted_server
    script += [("a", 200), ("b", 503)]
    assert not wait_until_ready(url, 2, timeout=1.0)
    assert {"a", "b"} == {w for w, _ in answered}
    answered.clear()
    assert not wait_until_ready(url, 2, timeout=30, alive=lambda: False) and not answered
    assert not wait_until_ready("http://127.0.0.1:9", 1, timeout=0.5)  # nothing listens: no answer at all
