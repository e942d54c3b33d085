"""The simulator's request log, for tests to read."""
import json
import threading
import time


class Log:
    """JSON lines in STATE/requests.jsonl: every request (no headers or bodies) and every event."""

    def __init__(self, path):
        self.f = open(path, "a", encoding="utf-8")
        self.lock = threading.Lock()

    def __call__(self, event, **fields):
        line = json.dumps(dict({"time": round(time.time(), 3), "event": event}, **fields), default=str)
        with self.lock:
            self.f.write(line + "\n")
            self.f.flush()
