"""Command line: ``python -m benchmark {list,prepare,run,leaderboard}`` (see DESIGN.md)."""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

from benchmark.paths import FIGURES_DIR

#: Set by a command whose process holds nothing that needs tearing down: ``python -m benchmark`` then ends
#: it with ``os._exit`` once its output is flushed. A rebuild holds its records (millions of objects),
#: and freeing them and the interpreter took ~0.3 s of a ~3 s rebuild.
EXIT_WITHOUT_TEARDOWN = False
_KEPT: list = []  # what such a command leaves to the end of the process instead of freeing it

RESULTS_HELP = "results folder (default: the suite's own: results/ for full, results/NAME for the others)"


def _csv(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def cmd_list(args: argparse.Namespace) -> int:
    from benchmark import registry, suites
    from benchmark.protocols import PROTOCOLS
    from benchmark.suite_files import available

    if args.what == "methods":
        from benchmark.hparams import describe

        for name, p in sorted(registry.methods().items()):
            summary = (p.cls.__doc__ or "").strip().splitlines()
            print(f"{name} ({p.path.name}): {summary[0] if summary else 'no docstring'}")
            print("\n".join(describe(p.cls.Hparams)) or "  (no hyperparameters)")
    elif args.what == "datasets":
        for name, p in sorted(registry.datasets().items()):
            ds = p.cls()
            prepared = _prepared_n(ds)
            mods = ", ".join(f"{m.name} {m.kind} {'x'.join(map(str, m.shape))}" for m in ds.modalities)
            status = f"prepared, n={prepared}" if prepared is not None else "not prepared"
            print(f"{name} ({status}; {ds.n_classes} classes): {mods}\n    {ds.card.source}")
    elif args.what == "protocols":
        for name, p in sorted(PROTOCOLS.items(), key=lambda kv: (kv[1].stage, kv[0])):
            params = "; ".join(q.describe() for q in p.params) or "no parameters"
            print(f"{name} (v{p.version}, {p.stage}, family {p.family}): {p.summary}\n    params: {params}")
    else:
        for name in available():
            suite = suites.load_suite(name)
            print(f"{name:10s} {suite.description}")
            for v in suite.variants:
                print(f"{'':10s}   variant {v.label}: {v.name} with {v.overrides}")
    for path, err in registry.BROKEN.items():
        print(f"warning: {path} failed to import: {err}", file=sys.stderr)
    return 0


def _prepared_n(ds) -> int | None:
    import json

    sidecar = ds.cache_path().with_suffix(".json")
    if not ds.is_prepared() or not sidecar.exists():
        return None
    return int(json.loads(sidecar.read_text()).get("n", -1))


def cmd_prepare(args: argparse.Namespace) -> int:
    from benchmark import registry
    from benchmark.data import MissingSourceError
    from benchmark.paths import data_dir

    names = _csv(args.datasets) or sorted(registry.datasets())
    print(f"store: {data_dir()}", file=sys.stderr)
    bad = 0
    for name in names:
        try:
            ds = registry.get("dataset", name).cls()
            ds.prepare(force=args.force)
            prepared = ds.load()
        except MissingSourceError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            bad += 1
            continue
        sizes = ", ".join(f"{k} {len(v)}" for k, v in prepared.splits.items())
        print(f"{name:15s} sha256 {prepared.checksum[:16]}  {sizes}")
    return 1 if bad else 0


def cmd_run(args: argparse.Namespace) -> int:
    from benchmark import run_flags

    run_flags.positive(args.workers, "--workers")
    run_flags.positive(args.threads, "--threads")
    seeds = run_flags.seeds(args.seeds)
    if args.backend == "dask" and not args.scheduler:
        from benchmark.dask_backend import warm_forkserver

        warm_forkserver()  # the workers' imports (torch first) overlap this process's imports and planning
    device = run_flags.device(args.device)
    if args.backend == "serial":
        from benchmark.isolation import start_method

        if start_method(device.type, args.threads) == "forkserver":  # the runs start from it (a GPU, threads)
            from benchmark.dask_backend import SERIAL_PRELOAD, warm_forkserver

            warm_forkserver(SERIAL_PRELOAD)
    from benchmark import registry
    from benchmark.suites import load_suite
    from benchmark.sweep import DataCache, plan, run_sweep

    for f in args.method_file or []:
        try:
            names = registry.add_method_file(Path(f))
        except Exception as exc:  # noqa: BLE001 - any import failure of a given file stops the sweep
            raise ValueError(f"--method-file {f} failed to import: {registry.describe_import_error(exc, Path(f))}; "
                             "fix it (python -m benchmark check-method names the problem) and run again") from None
        print(f"method file {f}: {', '.join(names)}", file=sys.stderr)
    suite = load_suite(args.suite)
    registry.methods()  # scan the plug-in folders: a file that fails to import stops the sweep, named
    if registry.BROKEN:
        lines = "; ".join(f"{path}: {err}" for path, err in registry.BROKEN.items())
        raise ValueError(f"method file(s) failed to import, so a suite of 'all' methods would silently lose them: "
                         f"{lines}; fix or move the file out of the plug-in folder, then run again")
    results = args.results or suite.results_dir
    cache = DataCache()
    runs = plan(suite, results, cache, _csv(args.methods), _csv(args.datasets), seeds)
    run_flags.results_folder(results)  # after the plan (which validates every condition), before any run
    if not args.skip_check:
        from benchmark.method_checks import check_methods

        todo = sorted({r.spec.method for r in runs})
        refusals = check_methods([registry.get("method", m) for m in todo],
                                 say=lambda line: print(line, file=sys.stderr))
        if refusals:
            raise ValueError("; ".join(r.message() for r in refusals))
    print(f"suite {suite.name}: {len(runs)} runs -> {results / 'runs'}", file=sys.stderr)
    summary = run_sweep(runs, cache, device, retry_failed=args.retry_failed, threads=args.threads,
                        progress=not args.no_progress, backend=args.backend, workers=args.workers,
                        scheduler=args.scheduler)
    if not args.no_leaderboard:
        _rebuild(args.suite, args.results)
    print(summary.text())
    return 1 if summary.failed or summary.failed_before else 0


def _rebuild(name: str, results: Path | None):  # noqa: ANN202 - benchmark.results.Results
    """Rebuild every output of a suite's folder from its records (no plan, no torch, no method import).
    The record files are decoded by a second process while this one imports pandas, scipy and the report
    code (benchmark.prefetch)."""
    from benchmark.paths import REPO_ROOT
    from benchmark.prefetch import RecordPrefetch
    from benchmark.scope import suite_scope

    scope = suite_scope(name, results)
    out = scope.results_dir
    prefetch = RecordPrefetch(out, scope)
    gc.disable()  # millions of containers and no cycles until the records are read and tabled
    try:
        from benchmark.report import write_reports
        from benchmark.results import load

        if scope.baseline:  # the mixed model's library, for the child that fits it: imported while the reader reads
            import statsmodels.formula.api  # noqa: F401
        loaded = load(out, scope, prefetch)
    finally:
        prefetch.close()
        gc.freeze()  # what is alive now lives until the process ends: later collections skip it
        gc.enable()
    figures = FIGURES_DIR if out.resolve() == (REPO_ROOT / "results").resolve() else out / "figures"
    write_reports(loaded, out, scope.name, scope.baseline, scope.selection_rule, figures)
    print(f"leaderboard of {len(loaded.records)} record(s) ({len(loaded.stale)} stale, {len(loaded.failed)} failed) "
          f"-> {out / 'leaderboard.md'}", file=sys.stderr)
    for note in loaded.notes():
        print(f"note: {note}", file=sys.stderr)
    return loaded


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from benchmark.paths import REPO_ROOT

    if args.record:
        from benchmark.provenance import record_leaderboard

        results = args.results or _scope(args.suite).results_dir
        commit = record_leaderboard(args.suite, results)
        print(f"recorded with datalad run as commit {commit[:12]}; `datalad rerun {commit[:12]}` reproduces it",
              file=sys.stderr)
        return 0
    global EXIT_WITHOUT_TEARDOWN
    _KEPT.append(_rebuild(args.suite, args.results))
    EXIT_WITHOUT_TEARDOWN = True  # its files are written and closed; its children are joined
    if args.update_readme:
        from benchmark.report.readme import update_readme

        update_readme(REPO_ROOT / "README.md", _scope(args.suite, args.results).results_dir / "leaderboard.md")
        print("README.md: leaderboard block replaced", file=sys.stderr)
    return 0


def _scope(name: str, results: Path | None = None):
    from benchmark.scope import suite_scope

    return suite_scope(name, results)


def _selected(name: str, results: Path | None = None):
    from benchmark.results import load
    from benchmark.selection import select

    scope = _scope(name, results)
    return select(load(scope.results_dir, scope), scope.selection_rule)[0]


def cmd_claims(args: argparse.Namespace) -> int:
    from benchmark.paths import REPO_ROOT
    from benchmark.report.claims_page import write_claims

    out = args.out or REPO_ROOT / "results" / "claims.md"
    checked = write_claims(out)
    counts: dict[str, int] = {}
    for r in checked:
        counts[r.verdict.verdict] = counts.get(r.verdict.verdict, 0) + 1
    print(f"{len(checked)} claims ({', '.join(f'{n} {v}' for v, n in sorted(counts.items()))}) -> {out}",
          file=sys.stderr)
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from benchmark.figures import draw_all

    results = _selected(args.suite, args.results)
    if not results.records:
        print(f"error: no record of suite {results.scope.name} in {results.scope.results_dir / 'runs'}; run "
              f"`python -m benchmark run --suite {args.suite}` first", file=sys.stderr)
        return 2

    def suite_results(name: str):
        """Another suite's results: beside an explicit --results as ``DIR/NAME``, else its own folder."""
        return _selected(name, args.results / name if args.results else None)

    for name, result in draw_all(results, args.out, suite_results).items():
        print(f"{name}: {result if isinstance(result, str) else ', '.join(str(p) for p in result)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from benchmark.results import load

    scope = _scope(args.suite, args.results)
    table = load(scope.results_dir, scope).table
    out = args.out or scope.results_dir / f"results.{args.format}"
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "csv":
        table.to_csv(out, index=False)  # full precision: the values round-trip
    else:
        table.to_parquet(out, index=False)
    print(f"{len(table)} rows ({table['run_id'].nunique()} runs) -> {out}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from benchmark.verify import verify

    scope = _scope(args.suite, args.results)
    report = verify(scope.results_dir, scope, args.sample, args.seed)
    print(report.text())
    return 0 if report.ok else 1


def cmd_check_method(args: argparse.Namespace) -> int:
    from benchmark import registry
    from benchmark.conformance import check_file

    try:
        results = check_file(args.path, args.seconds)
    except (SyntaxError, ImportError, NameError, AttributeError, TypeError) as exc:
        print(f"{args.path}: FAIL  import: {registry.describe_import_error(exc, Path(args.path).resolve())}; the file "
              "must import before any check can run", file=sys.stderr)
        return 1
    if args.json_out:  # for run's check before a sweep (benchmark.method_checks), which runs this in a child
        import json

        args.json_out.write_text(json.dumps({n: [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in cs]
                                             for n, cs in results.items()}))
    failed = 0
    for name, checks in results.items():
        print(f"{name} ({args.path}):")
        for c in checks:
            print(f"  {'PASS' if c.ok else 'FAIL'}  {c.name}{': ' + c.detail if c.detail else ''}")
            failed += not c.ok
    print("conformant" if not failed else f"{failed} check(s) failed")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmark", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list registered methods, datasets, protocols or suites")
    p.add_argument("what", choices=["methods", "datasets", "protocols", "suites"])
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("prepare", help="build and checksum the prepared arrays of datasets")
    p.add_argument("--datasets", help="comma-separated names (default: all)")
    p.add_argument("--force", action="store_true", help="rebuild even when a prepared file exists")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("run", help="run a suite (resumes: runs with a record are skipped)")
    p.add_argument("--suite", required=True, help="a suite name (see `list suites`) or a .toml path")
    p.add_argument("--methods", help="comma-separated subset of the suite's methods")
    p.add_argument("--datasets", help="comma-separated subset of the suite's datasets")
    p.add_argument("--seeds", help="comma-separated seeds (default: the suite's)")
    p.add_argument("--results", type=Path, help=RESULTS_HELP)
    p.add_argument("--backend", choices=["serial", "dask"], default="serial",
                   help="serial (default) or dask: a LocalCluster, or the cluster at --scheduler")
    p.add_argument("--workers", type=int, default=2, help="LocalCluster workers for --backend dask (default 2)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler to join (e.g. tcp://host:8786)")
    p.add_argument("--method-file", action="append", metavar="PATH",
                   help="a method file outside methods/ to run and rank (repeatable)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (1 is fastest for small models)")
    p.add_argument("--retry-failed", action="store_true", help="run again the runs recorded as failed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--skip-check", action="store_true",
                   help="train methods that have not passed check-method at their current source (by default "
                        "run checks each once per source and refuses a method that fails)")
    p.add_argument("--no-leaderboard", action="store_true", help="do not rebuild the leaderboard afterwards")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("leaderboard", help="rebuild leaderboard.{md,csv} from the stored records")
    p.add_argument("--suite", default="full",
                   help="the suite whose runs it tabulates (default: full, the committed one)")
    p.add_argument("--results", type=Path, help=RESULTS_HELP)
    p.add_argument("--record", action="store_true",
                   help="run the regeneration under `datalad run` (a clean datalad dataset is needed)")
    p.add_argument("--update-readme", action="store_true",
                   help="copy the tables into README.md between its leaderboard markers")
    p.set_defaults(func=cmd_leaderboard)
    p = sub.add_parser("export", help="write the tidy results table (one row per run x condition x metric)")
    p.add_argument("--suite", default="full", help="the suite whose records are exported (default: full)")
    p.add_argument("--results", type=Path, help=RESULTS_HELP)
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    p.add_argument("--out", type=Path, help="the file to write (default: RESULTS/results.FORMAT)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("verify", help="re-run a seeded sample of committed records and compare every metric")
    p.add_argument("--suite", default="quick", help="the suite whose records are re-run (default: quick)")
    p.add_argument("--results", type=Path, help=RESULTS_HELP)
    p.add_argument("--sample", type=int, default=3, help="how many records to re-run (default 3)")
    p.add_argument("--seed", type=int, default=0, help="the seed of the sample's choice (default 0)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("check-method", help="conformance checks of a method file before it joins the leaderboard")
    p.add_argument("path", type=Path, help="the method file")
    p.add_argument("--seconds", type=int, default=120, help="time limit of each check (default 120)")
    p.add_argument("--json-out", type=Path, default=None, help="also write the verdicts as JSON to this file")
    p.set_defaults(func=cmd_check_method)

    p = sub.add_parser("claims", help="check every paper's claims and the known answers on the stored records of "
                                      "the suites they name (trains nothing) and write results/claims.md")
    p.add_argument("--out", type=Path, default=None, help="where the page goes (default results/claims.md)")
    p.set_defaults(func=cmd_claims)

    p = sub.add_parser("figures", help="draw every paper figure from the stored records (trains nothing)")
    p.add_argument("--suite", default="full", help="the suite whose runs are drawn (default: full, the committed one)")
    p.add_argument("--results", type=Path, help=RESULTS_HELP)
    p.add_argument("--out", type=Path, default=FIGURES_DIR)
    p.set_defaults(func=cmd_figures)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        # Records are written atomically as runs finish: nothing finished is lost, and the same command resumes.
        command = "python -m benchmark " + " ".join(argv if argv is not None else sys.argv[1:])
        print(f"\ninterrupted: every run that finished has its record; `{command}` resumes where it stopped",
              file=sys.stderr)
        return 130
    except (KeyError, ValueError, FileNotFoundError, RuntimeError) as exc:  # ProtocolError is a ValueError
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {msg}", file=sys.stderr)
        return 2
