"""Proves the suite bites: applies one-line mutations to the code, one at a time, runs the tests that
guard each, and reports whether a test failed (caught) or all passed (survived).

    .venv/bin/python scripts/mutate.py            # every mutation (~2 minutes on 2 cores)
    .venv/bin/python scripts/mutate.py redact     # those whose name contains "redact"

Each mutation replaces one exact line fragment (it must occur once) and is undone afterwards, also on
Ctrl-C. Exit status 1 if any mutation survives. A mutation counts as caught only when pytest reports a
failing test (exit code 1), not when the mutant cannot be imported.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS = (
    Mutation(
        "a threshold to an extreme: judge diversity never collapsed",
        "gansweep/diagnostics/flags.py",
        "DIVERSITY_COLLAPSED = 0.4",
        "DIVERSITY_COLLAPSED = 0.0",
        ("tests/diagnostics_tests/test_thresholds.py",),
    ),
    Mutation(
        "the judge-diversity rule deleted",
        "gansweep/diagnostics/flags.py",
        'if r["modes_covered"] <= MODES_COLLAPSED or r["diversity"] < DIVERSITY_COLLAPSED or _few_distinct(r):',
        'if r["modes_covered"] <= MODES_COLLAPSED or _few_distinct(r):',
        ("tests/diagnostics_tests/test_thresholds.py",),
    ),
    Mutation(
        "a few distinct images drawn again and again read as varied",
        "gansweep/diagnostics/flags.py",
        'return not illegible(r) and r.get("distinct", math.inf) <= DISTINCT_COLLAPSED',
        "return False",
        ("tests/diagnostics_tests/test_thresholds.py", "-k", "few_distinct"),
    ),
    Mutation(
        "the judge's figures of samples it cannot read taken as progress",
        "gansweep/diagnostics/flags.py",
        'return metric in r and (metric == "pixel_diversity" or not illegible(r))',
        "return metric in r",
        ("tests/diagnostics_tests/test_thresholds.py", "tests/diagnostics_tests/test_diagnose_cli.py"),
    ),
    Mutation(
        "a resumed trial's run without the epochs its checkpoint restored",
        "gansweep/tracking.py",
        "for record in trainer.history.epochs:  # restored from a checkpoint: none for a fresh trial",
        "for record in []:",
        ("tests/test_bad_input.py", "-k", "resumed_run_is_whole"),
    ),
    Mutation(
        "a group that claims a point of another shape",
        "gansweep/sweep/_queue.py",
        "if shape_of(TrialRecord.of(waiting)) == key and (trial := _optuna.claim(study, waiting)) is not None:",
        "if (trial := _optuna.claim(study, waiting)) is not None:",
        ("tests/sweep_tests/test_groups.py", "-k", "claims_points_of_one_shape"),
    ),
    Mutation(
        "the fid_mnist > 500 rule deleted",
        "gansweep/diagnostics/flags.py",
        'return "poor" if r["fid_mnist"] > FID_HIGH else "healthy"',
        'return "healthy"',
        ("tests/diagnostics_tests/test_thresholds.py",),
    ),
    Mutation(
        "collapsed samples that draw their digit better read as more varied",
        "gansweep/diagnostics/flags.py",
        "moved = (lambda s: s.variety) if variety else (lambda s: s.record)",
        "moved = lambda s: s.record  # noqa: E731",
        ("tests/diagnostics_tests/test_flags.py", "-k", "draw_their_digit_better"),
    ),
    Mutation(
        "a worker that scores with its own judge whatever the sweep's",
        "gansweep/sweep/_judge.py",
        'if record["sha256"] != judge.sha256:',
        "if False:",
        ("tests/sweep_tests/test_judge.py", "-k", "refuses_before"),
    ),
    Mutation(
        "a heartbeat default of 10 s",
        "gansweep/options.py",
        "HEARTBEAT = 15",
        "HEARTBEAT = 10",
        ("tests/sweep_tests/test_takeover.py", "-k", "heartbeat_defaults"),
    ),
    Mutation(
        "a redaction that returns its input",
        "gansweep/errors.py",
        'text = _SECRET_PARAMETER.sub(r"\\1***", _USERINFO.sub(r"\\1:***@", text))',
        "text = text",
        ("tests/test_errors.py",),
    ),
    Mutation(
        "a password's pieces left to what a driver says",
        "gansweep/errors.py",
        "found |= {form, *_PASSWORD_SEPARATORS.split(form)}",
        "found |= {form}",
        ("tests/test_errors.py",),
    ),
    Mutation(
        "a misleading objective handed to Optuna as it is",
        "gansweep/sweep/_callback.py",
        'if diagnosis.outcome == "bad" or value is None:',
        "if False:",
        ("tests/sweep_tests/test_worker.py",),
    ),
    Mutation(
        "a claim that skips its compare-and-set",
        "gansweep/sweep/_optuna.py",
        "if not storage.set_trial_state_values(trial_id(waiting), TrialState.RUNNING):",
        "if not storage.set_trial_state_values(trial_id(waiting), TrialState.RUNNING) and False:",
        ("tests/sweep_tests/test_queue.py", "-k", "saw_a_trial"),
    ),
    Mutation(
        "a sweep lock that never refuses",
        "gansweep/sweep/_storage.py",
        "fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)",
        "pass",
        ("tests/test_bad_input.py", "-k", "second_run"),
    ),
    Mutation(
        "a checkpoint of another trial accepted",
        "gansweep/checkpoint.py",
        "if found != _identity(trainer):",
        "if False:",
        ("tests/test_bad_input.py", "-k", "checkpoint_of_another_trial and not sweep"),
    ),
    Mutation(
        "unknown grid keys ignored",
        "gansweep/config.py",
        'model_config = ConfigDict(extra="forbid")',
        'model_config = ConfigDict(extra="ignore")',
        ("tests/test_bad_input.py", "-k", "unknown_key"),
    ),
    Mutation(
        "a digit covered by any sample at all",
        "gansweep/diagnostics/metrics.py",
        "FAIR_SHARE = 0.25",
        "FAIR_SHARE = 0.0",
        ("tests/diagnostics_tests/test_judge_and_metrics.py",),
    ),
    Mutation(
        "the best trial is the worst",
        "gansweep/tables.py",
        "candidate.best = score(candidate) == low",
        "candidate.best = score(candidate) != low",
        ("tests/test_tables.py",),
    ),
    Mutation(
        "a trial whose worker died reads as failed, not interrupted",
        "gansweep/sweep/_record.py",
        "return State.FAILED if has_error else State.INTERRUPTED",
        "return State.FAILED",
        ("tests/sweep_tests/test_record.py",),
    ),
)


def _run(mutation: Mutation) -> tuple[bool, float]:
    path = ROOT / mutation.file
    original = path.read_text()
    if original.count(mutation.old) != 1:
        raise SystemExit(
            f"{mutation.file}: {mutation.old!r} occurs {original.count(mutation.old)} times, not once; update MUTATIONS"
        )
    start = time.monotonic()
    try:
        path.write_text(original.replace(mutation.old, mutation.new))
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutation.tests]
        code = subprocess.run(command, cwd=ROOT, capture_output=True).returncode
    finally:
        path.write_text(original)
    return code == 1, time.monotonic() - start


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTATIONS if not argv or any(a in m.name for a in argv)]
    survived = 0
    print("| mutation | file | tests run | result | s |\n|---|---|---|---|---|")
    for mutation in chosen:
        caught, seconds = _run(mutation)
        survived += not caught
        print(
            f"| {mutation.name} | {mutation.file} | {' '.join(mutation.tests)} | {'caught' if caught else 'SURVIVED'} | {seconds:.0f} |",
            flush=True,
        )
    print(f"{len(chosen) - survived}/{len(chosen)} mutations caught")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
