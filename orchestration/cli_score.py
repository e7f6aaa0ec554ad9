"""`outflow score-file`: train and evaluate the lead-scoring pipeline on a CSV lead list.

Exit codes: 0 scored; 2 bad input (the message names the column or file to fix);
3 refused by the leakage guard (a column gives the outcome away).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_LEAKAGE = 3


def add_score_file(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score-file",
        help="train and evaluate the predictive lead score on a CSV of past leads (scores + metrics report)",
        description=(
            "Fits the warehouse's lead-scoring pipeline on LEADS.csv: columns typed automatically, a held-out "
            "split (stratified, or by --time), model chosen by cross-validation on the training rows, compared "
            "with a plain logistic regression on the same rows. Columns that give the label away are refused."
        ),
    )
    p.add_argument("leads", metavar="LEADS.csv", help="lead list with a header line; delimiter , ; tab or | detected")
    p.add_argument("--label", required=True, help="column that says whether the lead converted (0/1, yes/no, true/false)")
    p.add_argument("--id", help="column with a unique id per lead (default: the row number, 1 = first data line)")
    p.add_argument("--exclude", nargs="+", action="extend", default=[], metavar="COL",
                   help="columns not to use, e.g. fields filled in after the outcome")
    p.add_argument("--time", help="date/time the lead was created: hold out the latest leads instead of a random share")
    p.add_argument("--outcome-time", help="date/time of the conversion: refuse date columns recorded after it")
    p.add_argument("--positive", help="label value that means converted, when it is not yes/1/true")
    p.add_argument("--test-share", type=float, default=0.25, help="share of leads held out (default 0.25)")
    p.add_argument("--seed", type=int, default=42, help="random seed for the split and the models (default 42)")
    p.add_argument("--out", help="scores CSV (default: <LEADS>_scores.csv in the current directory)")
    p.add_argument("--report", help="metrics report JSON (default: <LEADS>_report.json in the current directory)")
    p.set_defaults(run=run_score_file)


def run_score_file(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from orchestration.scoring import LeakageError, ScoringInputError
    from orchestration.scoring.score_file import ScoreFileRequest, score_file, write_outputs

    path = Path(args.leads).expanduser()
    if not 0 < args.test_share < 1:
        print(f"error: --test-share must be between 0 and 1, got {args.test_share}", file=sys.stderr)
        return EXIT_BAD_INPUT
    request = ScoreFileRequest(
        path=path, label=args.label, id_column=args.id, exclude=tuple(args.exclude), time_column=args.time,
        outcome_time_column=args.outcome_time, positive=args.positive, test_share=args.test_share, seed=args.seed,
    )
    try:
        scores, report, _ = score_file(request)
    except LeakageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_LEAKAGE
    except ScoringInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = Path(args.out) if args.out else Path(f"{path.stem}_scores.csv")
    report_path = Path(args.report) if args.report else Path(f"{path.stem}_report.json")
    write_outputs(scores, report, out, report_path)

    console = Console() if Console().is_terminal else Console(width=200)
    table = Table(title=f"{path.name}: {report['rows']:,} leads, held out {report['n_test']:,} ({report['split']})")
    table.add_column("model")
    table.add_column("held-out AUC", justify="right")
    table.add_column("Brier", justify="right")
    table.add_row(f"{report['model']} (chosen by CV)", f"{report['auc']:.4f}", f"{report['brier']:.4f}")
    table.add_row("plain logistic regression", f"{report['baseline_auc']:.4f}", f"{report['baseline_brier']:.4f}")
    console.print(table)
    top = ", ".join(f"{c['feature']} ({c['auc_drop']:+.3f})" for c in report["contributions"][:5])
    console.print(f"top contributions (AUC drop when shuffled): {top}", soft_wrap=True)
    console.print(f"scores: {out}\nreport: {report_path}", soft_wrap=True)
    return 0
