"""The kinds of log a bottle keeps, by name, with what each holds.

Kept apart from :mod:`bottle_core.logs` (which reads and renders them) so the
command line can build its ``--KIND`` flags without importing it.
"""

from __future__ import annotations

#: Each kind's name (its file is ``logs/<name>.jsonl``) and what it holds.
KIND_HELP = {
    "egress": "the proxy's decisions: each request allowed or refused, and the rule",
    "git": "the git gate's push decisions: refs, old and new, pushed or refused and by which rule",
    "audit": "the supervisor's record: every hook event and every tool call's decision, in order",
    "model": "what the scripted model server received (runs with --model-script)",
}
