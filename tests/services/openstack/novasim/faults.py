"""Failure injection for tests. A rule {"op": OP, "mode": MODE, "count": N, "seconds": S}:
  mode "500"   - the API call OP answers 500 computeFault (count times, default 1);
  mode "error" - the asynchronous work of OP fails: create -> server ERROR with a fault,
                 createImage -> the snapshot image is deleted and the server returns to its state,
                 stop/start -> server ERROR;
  mode "slow"  - the asynchronous work of OP waits S seconds (default 30) first.
OP is an operation name as logged ("create", "show", "list", "delete", "stop", "start",
"createImage", "console", "keypair-create", ...) or "*" for any."""
import threading

MODES = ("500", "error", "slow")


class Faults:
    def __init__(self):
        self._rules = []
        self._lock = threading.Lock()

    def add(self, rule):
        if not isinstance(rule, dict) or not isinstance(rule.get("op"), str) or rule.get("mode") not in MODES:
            raise ValueError('a rule is {"op": NAME, "mode": one of %s, "count": N, "seconds": S}' % (MODES,))
        rule = dict(rule)
        rule.setdefault("count", 1)
        with self._lock:
            self._rules.append(rule)

    def clear(self):
        with self._lock:
            self._rules = []

    def rules(self):
        with self._lock:
            return [dict(r) for r in self._rules]

    def take(self, op, mode):
        """The matching rule (consuming one use), or None."""
        with self._lock:
            for r in self._rules:
                if r["mode"] == mode and r["op"] in (op, "*") and r["count"] != 0:
                    r["count"] -= 1
                    return dict(r)
        return None
