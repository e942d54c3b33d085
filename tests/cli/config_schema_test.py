#!/usr/bin/env python3
"""`lcake config schema KIND` checked by an independent validator (python3-jsonschema):
the bundled configs validate, typical mistakes do not, overlays may be partial and delete.

usage: config_schema_test.py LCAKE SOURCE_DIR      (exit 77 = skipped: no jsonschema module)"""
import json
import pathlib
import subprocess
import sys

try:
    import jsonschema
except ImportError:
    print("SKIP: python3-jsonschema is not installed (scripts/setup-deps.sh --tests)")
    sys.exit(77)

lcake, src = sys.argv[1], pathlib.Path(sys.argv[2])
failures = []


def schema(kind):
    out = subprocess.run([lcake, "config", "schema", kind], check=True, capture_output=True, text=True).stdout
    s = json.loads(out)
    jsonschema.Draft7Validator.check_schema(s)
    return jsonschema.Draft7Validator(s)


def expect(validator, doc, ok, what):
    errors = list(validator.iter_errors(doc))
    if bool(not errors) != ok:
        failures.append(f"{what}: expected {'valid' if ok else 'invalid'}, got "
                        + (str([e.message for e in errors][:3]) if errors else "valid"))
    else:
        print(f"ok: {what}")


validators = {k: schema(k) for k in ("pipeline", "target", "overlay", "config")}

# Every bundled file validates against its kind's schema.
bundled = [("pipeline", p) for p in sorted((src / "configs/pipelines").glob("*.json"))]
bundled += [("target", p) for p in sorted((src / "configs/targets").glob("*.json"))]
bundled += [("overlay", p) for p in sorted((src / "examples/sites").glob("*.json"))]
assert len(bundled) >= 8, bundled
for kind, path in bundled:
    expect(validators[kind], json.loads(path.read_text()), True, f"{path.relative_to(src)} as {kind}")

# The merged tree of the example, as `lcake config show` prints it.
shown = subprocess.run([lcake, "config", "show", "--target", "qemu", "--config-dir", str(src / "configs")],
                       capture_output=True, text=True)
if shown.returncode == 0:
    expect(validators["config"], json.loads(shown.stdout), True, "config show --target qemu")

target = json.loads((src / "configs/targets/qemu.json").read_text())
pipeline = json.loads((src / "configs/pipelines/stack.json").read_text())

bad = json.loads(json.dumps(target)); bad["builder"]["settings"]["memroy"] = 512
expect(validators["target"], bad, False, "target: a misspelt qemu builder setting")
bad = json.loads(json.dumps(target)); bad["builder"]["settings"]["memory"] = "lots"
expect(validators["target"], bad, False, "target: a qemu setting of the wrong type")
bad = json.loads(json.dumps(target)); bad["verifier"]["boots"] = "both"
expect(validators["target"], bad, False, "target: verifier.boots not upload|build")
bad = json.loads(json.dumps(target)); del bad["builder"]
expect(validators["target"], bad, False, "target: no builder")
good = json.loads(json.dumps(target)); good["$schema"] = "./target.schema.json"
expect(validators["target"], good, True, "target: a $schema key for editors")
other = {"builder": {"plugin": "docker", "settings": {"memroy": 1}}}
expect(validators["target"], other, False, "target: a docker setting the docker plugin does not have")

bad = json.loads(json.dumps(pipeline)); del bad["layers"]
expect(validators["pipeline"], bad, False, "pipeline: no layers")
bad = json.loads(json.dumps(pipeline)); next(iter(bad["layers"].values()))["provisoners"] = []
expect(validators["pipeline"], bad, False, "pipeline: a misspelt layer key")
bad = json.loads(json.dumps(pipeline)); next(iter(bad["layers"].values()))["provisioners"] = [{"type": "shel"}]
expect(validators["pipeline"], bad, False, "pipeline: an unknown provisioner type")

overlay = {"target": {"builder": {"settings": {"memory": 2048}}}}
expect(validators["overlay"], overlay, True, "overlay: one setting, nothing else")
expect(validators["overlay"], {"pipeline": {"layers": {"stack": None}}}, True, "overlay: null deletes a layer")
expect(validators["overlay"], {"target": {"verifier": None}, "vars": {"TAG": "w_2016_10"}}, True,
       "overlay: null deletes the verifier")
expect(validators["overlay"], {"target": {"buidler": {}}}, False, "overlay: a misspelt target key")
expect(validators["overlay"], {"target": {"builder": {"plugin": "qemu", "settings": {"memory": "x"}}}}, False,
       "overlay: a qemu setting of the wrong type")

bogus = subprocess.run([lcake, "config", "schema", "site"], capture_output=True, text=True)
if bogus.returncode != 2 or "not pipeline, target, overlay or config" not in bogus.stderr:
    failures.append(f"config schema site: exit {bogus.returncode}, {bogus.stderr!r}")

for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
