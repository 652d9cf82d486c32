"""Content inspection measured on data this project did not write: attacks stopped and benign traffic refused, per class.

The cases (``benchmarks/eval_data/public.jsonl``) come from public fixtures
and datasets, each row naming its source repository, commit and file (see
``benchmarks/eval_data/README.md``). Every row belongs to one half, ``dev`` or
``held-out``, by its source: a source (a file of a repository, a category of
a dataset, a Debian package) is wholly in one half. The held-out half is the
one reported, and no rule was tuned on it.

* request rows are sent as a request would carry them (a JSON body to an
  allowed host bound to no secret) and judged by ``inspection.Inspector``;
  stopped = refused;
* response rows are served as a web page (an HTML paragraph) and read by
  ``response_inspection.find_injection``; an attack is stopped when the page is
  withheld or its instructions taken out; a benign page is refused when
  withheld, and counted as altered when a span of it was taken out;
* a response row with a ``content_type`` (a JSON API answer, a README in
  markdown) is served as it is, with that type;
* source-code rows (``benign-code-file``: Debian's installed Python files,
  named in the data, read from where Debian put them) are served as a code
  host serves raw files: ``text/plain`` at a URL ending in the file's name.
  A row whose file is missing or changed on this machine is skipped and
  counted.

The benign figure is also printed without ``benign-credential``: the cases
secret scanners' authors wrote for their scanner to pass (near misses of a
provider's shape, keys out of a keyword's reach), which measure agreement
with the scanners rather than benign traffic.

    python benchmarks/eval_inspection.py [--half held-out|dev|all] [--side request|response] [--source TEXT ...]
        [--show-misses]

``--source`` keeps the rows whose source names TEXT (e.g. ``noseyparker``), to
read one batch's figures alone.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout: the package beside this folder

from bottle_core.bundle.image import inspection, response_inspection  # noqa: E402

DATA = ROOT / "benchmarks" / "eval_data" / "public.jsonl"
PAGE = ("<!doctype html><html><head><title>Notes</title></head><body><h1>Notes</h1>"
        "<p>{}</p><p>Last updated in March. Comments are closed.</p></body></html>")


def judge(row: dict, inspector: inspection.Inspector) -> str:
    """'stopped' (refused or withheld), 'removed' (instructions taken out) or 'passed'."""
    if row["side"] == "request":
        body = json.dumps({"note": row["text"]}).encode()
        finding = inspector.inspect("allowed.test", 443, "/notes", [("content-type", "application/json")], body,
                                    "application/json")
        return "stopped" if finding else "passed"
    if row.get("file"):
        verdict = response_inspection.find_injection(row["body"], "text/plain; charset=utf-8", row["file"])
    elif row.get("content_type"):  # served as it is, with its own type (a JSON API answer, a README)
        verdict = response_inspection.find_injection(row["text"].encode(), row["content_type"])
    else:
        page = PAGE.format(html.escape(row["text"], quote=False).replace("\n", "<br>\n")).encode()
        verdict = response_inspection.find_injection(page, "text/html; charset=utf-8")
    if not verdict.injection:
        return "passed"
    return "removed" if verdict.cleaned is not None else "stopped"


def load_files(rows: list[dict]) -> tuple[list[dict], int]:
    """Rows with their file's bytes read (rows that name a file rather than carry a text); the rows whose file is
    missing or not the one named (another version) are left out and counted."""
    kept, missing = [], 0
    for row in rows:
        if row.get("file"):
            try:
                body = Path(row["file"]).read_bytes()
            except OSError:
                body = None
            if body is None or hashlib.sha256(body).hexdigest() != row["sha256"]:
                missing += 1
                continue
            row = {**row, "body": body, "text": body.decode("utf-8", "replace")}
        kept.append(row)
    return kept, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--half", default="held-out", choices=("held-out", "dev", "all"))
    parser.add_argument("--source", action="append", default=[], metavar="TEXT",
                        help="only rows whose source contains TEXT (repeatable: any of them)")
    parser.add_argument("--side", choices=("request", "response"), help="only the rows of one side")
    parser.add_argument("--show-misses", action="store_true", help="print each case judged wrongly, with its source")
    args = parser.parse_args()
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if (args.half == "all" or r["half"] == args.half)
            and (not args.source or any(text in r["source"] for text in args.source))
            and (not args.side or r["side"] == args.side)]
    rows, missing = load_files(rows)
    inspector = inspection.Inspector([], ["allowed.test"])
    tally: dict[tuple[str, bool], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        outcome = judge(row, inspector)
        tally[(row["class"], row["attack"])][outcome] += 1
        wrong = (outcome == "passed") == row["attack"]
        if args.show_misses and wrong:
            print(f"  {row['class']} {outcome}: {row['text'][:100]!r} ({row['source'].rsplit(':', 1)[-1]})")
    try:
        import stdnum
        checks = f"python-stdnum {stdnum.__version__}"
    except ImportError:
        checks = "no python-stdnum: identifiers' stand-in checks (the bundle image has python3-stdnum)"
    print(f"checksums: {checks}")
    sources = "".join(f"  source ~ {text!r}" for text in args.source)
    print(f"half: {args.half}{sources}  ({len(rows)} cases from {DATA.relative_to(ROOT)}"
          + (f"; {missing} named files missing or changed on this machine, skipped)" if missing else ")"))
    print(f"{'class':<18}{'side':<10}{'cases':>6}  result")
    totals = {True: [0, 0], False: [0, 0, 0]}
    for (name, attack), counts in sorted(tally.items(), key=lambda item: (not item[0][1], item[0][0])):
        n = sum(counts.values())
        side = next(r["side"] for r in rows if r["class"] == name)
        if attack:
            stopped = counts["stopped"] + counts["removed"]
            totals[True][0] += stopped
            totals[True][1] += n
            detail = f" ({counts['removed']} by taking the instructions out)" if counts["removed"] else ""
            print(f"{name:<18}{side:<10}{n:>6}  attacks stopped {stopped}/{n} = {100 * stopped / n:.1f}%{detail}")
        else:
            totals[False][0] += counts["stopped"]
            totals[False][1] += n
            totals[False][2] += counts["removed"]
            altered = f", altered {counts['removed']}" if counts["removed"] else ""
            print(f"{name:<18}{side:<10}{n:>6}  benign refused {counts['stopped']}/{n} = "
                  f"{100 * counts['stopped'] / n:.1f}%{altered}")
    (stopped, attacks), (refused, benign, altered) = totals[True], totals[False]
    print(f"all attacks stopped {stopped}/{attacks} = {100 * stopped / max(attacks, 1):.1f}%; "
          f"benign refused {refused}/{benign} = {100 * refused / max(benign, 1):.1f}% (altered {altered})")
    # Secret scanners' own near misses are not benign traffic (see eval_data/README.md): the figure without them.
    near = tally.get(("benign-credential", False))
    if near:
        n = sum(near.values())
        print(f"benign refused but scanners' near misses (benign-credential): {refused - near['stopped']}/{benign - n}"
              f" = {100 * (refused - near['stopped']) / max(benign - n, 1):.1f}%")


if __name__ == "__main__":
    main()
