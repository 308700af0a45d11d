"""Command line of the robust multimodal benchmark: ``mmbench COMMAND`` or ``python -m benchmark COMMAND``.
README.md shows each command in use."""

from __future__ import annotations

import argparse
import gc
import shlex
import sys
from pathlib import Path

from benchmark.console import LOG

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
        LOG.warning("%s failed to import: %s", path, err)
    return 0


def _prepared_n(ds) -> int | None:
    import json

    sidecar = ds.cache_path().with_suffix(".json")
    if not ds.is_prepared() or not sidecar.exists():
        return None
    return int(json.loads(sidecar.read_text()).get("n", -1))


def cmd_prepare(args: argparse.Namespace) -> int:
    """Prepare in a child process of its own process group (datalad and git run below it): Ctrl-C reaches
    only this process, which ends the child's whole group and says how to rebuild, instead of every git
    and datalad process printing its own traceback. A prepare killed anywhere is undone by ``--force``."""
    if not args.in_process:
        import os
        import signal
        import subprocess

        from benchmark.paths import INSTALLED, PACKAGE_DIR

        env = dict(os.environ)
        if not INSTALLED:  # the same benchmark package as this process, whatever the working directory
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_DIR.parent), env.get("PYTHONPATH")]))
        argv = [sys.executable, "-m", "benchmark", *(["-v"] * args.verbose), *(["-q"] * args.quiet), "prepare",
                "--in-process", *(["--datasets", args.datasets] if args.datasets else []),
                *(["--force"] if args.force else [])]
        child = subprocess.Popen(argv, env=env, start_new_session=True)
        try:
            return child.wait()
        except KeyboardInterrupt:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            raise
    return _prepare_here(args)


def _prepare_here(args: argparse.Namespace) -> int:
    from benchmark import registry
    from benchmark.data import MissingSourceError
    from benchmark.paths import data_dir

    names = _csv(args.datasets) or sorted(registry.datasets())
    LOG.info("store: %s", data_dir())
    bad = 0
    for name in names:
        try:
            ds = registry.get("dataset", name).cls()
            ds.prepare(force=args.force)
            prepared = ds.load()
        except MissingSourceError as exc:
            LOG.error("%s: %s", name, exc)
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
    if args.backend == "dask" and not args.scheduler and not args.dry_run:
        from benchmark.dask_backend import warm_forkserver

        warm_forkserver()  # the workers' imports (torch first) overlap this process's imports and planning
    device = run_flags.device(args.device)
    if args.backend == "serial" and not args.dry_run:
        from benchmark.isolation import start_method

        if start_method(device.type, args.threads) == "forkserver":  # the runs start from it (a GPU, threads)
            from benchmark.dask_backend import SERIAL_PRELOAD, warm_forkserver

            warm_forkserver(SERIAL_PRELOAD)
    from benchmark import console, registry
    from benchmark.progress import ExpectedTimes, past_seconds
    from benchmark.suites import load_suite
    from benchmark.sweep import DataCache, SweepInterrupted, plan, run_sweep

    for f in args.method_file or []:
        try:
            names = registry.add_method_file(Path(f))
        except Exception as exc:  # noqa: BLE001 - any import failure of a given file stops the sweep
            raise ValueError(f"--method-file {f} failed to import: {registry.describe_import_error(exc, Path(f))}; "
                             "fix it (check-method names the problem) and run again") from None
        LOG.info("method file %s: %s", f, ", ".join(names))
    suite = load_suite(args.suite)
    registry.methods()  # scan the plug-in folders: a file that fails to import stops the sweep, named
    if registry.BROKEN:
        lines = "; ".join(f"{path}: {err}" for path, err in registry.BROKEN.items())
        raise ValueError(f"method file(s) failed to import, so a suite of 'all' methods would silently lose them: "
                         f"{lines}; fix or move the file out of the plug-in folder, then run again")
    results = args.results or suite.results_dir
    cache = DataCache()
    runs = plan(suite, results, cache, _csv(args.methods), _csv(args.datasets), seeds)
    folders = _timing_folders(results)  # a pair recorded in the sweep's own folder is timed from it alone
    expected = ExpectedTimes({**past_seconds(folders[1:]), **past_seconds(folders[:1])})
    if args.dry_run:
        return _dry_run(args, suite.name, runs, results, expected)
    run_flags.results_folder(results)  # after the plan (which validates every condition), before any run
    log_path = console.open_log_file(results, _command_line())
    LOG.info("log: %s", log_path)
    if not args.skip_check:
        from benchmark.method_checks import check_methods

        todo = sorted({r.spec.method for r in runs})
        refusals = check_methods([registry.get("method", m) for m in todo], say=LOG.info)
        if refusals:
            raise ValueError("; ".join(r.message() for r in refusals))
    LOG.info("suite %s: %d runs -> %s", suite.name, len(runs), results / "runs")
    progress = "off" if args.no_progress or console.quiet() else True
    try:
        summary = run_sweep(runs, cache, device, retry_failed=args.retry_failed, threads=args.threads,
                            progress=progress, backend=args.backend, workers=args.workers,
                            scheduler=args.scheduler, expected=expected)
    except SweepInterrupted as stop:
        s = stop.summary
        finished = s.done + len(s.failed)
        LOG.warning("interrupted: %d run(s) of this sweep finished and have their records (%d ok, %d failed; %d "
                    "were recorded before it started), %d still to do. Resume with: %s", finished, s.done,
                    len(s.failed), s.skipped, s.to_do - finished - s.claimed_elsewhere, _command_line())
        return 130
    loaded = None
    if not args.no_leaderboard:
        loaded = _rebuild(args.suite, args.results)
    console.out(summary.text())
    console.out(_last_line(loaded, results, args.no_leaderboard))
    return 1 if summary.failed or summary.failed_before else 0


_ARGV: list[str] = []  # the arguments ``main`` was given


def _command_line() -> str:
    """The command this process runs, as typed (``mmbench ...`` or ``python -m benchmark ...``)."""
    return f"{_prog()} {shlex.join(_ARGV)}".strip()


def _prog() -> str:
    return "mmbench" if Path(sys.argv[0]).name == "mmbench" else "python -m benchmark"


def _timing_folders(results: Path) -> list[Path]:
    """Where past run times are read from: the sweep's own folder, then every suite folder of the project's
    ``results/`` (the committed records of a checkout): a run never seen here is estimated from those."""
    from benchmark.paths import REPO_ROOT

    root = REPO_ROOT / "results"
    out = [results]  # first, even before it exists
    for folder in [root, *sorted(p for p in root.glob("*") if (p / "runs").is_dir())]:
        if folder.is_dir() and all(folder.resolve() != f.resolve() for f in out):
            out.append(folder)
    return out


def _dry_run(args: argparse.Namespace, name: str, runs: list, results: Path, expected) -> int:  # noqa: ANN001
    """The plan, nothing trained: per row and dataset the runs, how many are recorded, failed before or
    to do, their expected time (from past records), the methods ``run`` would check first, and the files
    it would move to quarantine. Nothing is written."""
    from benchmark import console, registry
    from benchmark.method_checks import cached_verdict
    from benchmark.progress import duration
    from benchmark.sweep import record_state

    groups: dict[tuple[str, str], dict[str, int]] = {}
    invalid = []
    for r in runs:
        g = groups.setdefault((r.spec.row, r.spec.dataset), {"runs": 0, "recorded": 0, "failed": 0, "todo": 0})
        g["runs"] += 1
        rec, reason = record_state(r)
        if reason:
            invalid.append(f"{r.path.name}: {reason}")
        if rec is None or (not rec.ok and args.retry_failed):
            g["todo"] += 1
        else:
            g["recorded" if rec.ok else "failed"] += 1
    width = max([len(row) for row, _ in groups] + [3])
    dwidth = max([len(d) for _, d in groups] + [7])
    console.out(f"suite {name}: {len(runs)} run(s) planned -> {results / 'runs'} (dry run: nothing is trained)")
    console.out(f"{'row':{width}s}  {'dataset':{dwidth}s}  runs  recorded  failed  to do  expected per run")
    total = 0.0
    for (row, dataset), g in sorted(groups.items()):
        each = expected(row, dataset)
        total += each * g["todo"]
        basis = "" if expected.known(row, dataset) else " (estimated)"
        console.out(f"{row:{width}s}  {dataset:{dwidth}s}  {g['runs']:4d}  {g['recorded']:8d}  {g['failed']:6d}  "
                    f"{g['todo']:5d}  {each:.1f} s{basis}")
    todo = sum(g["todo"] for g in groups.values())
    skipped = sum(g["recorded"] + g["failed"] for g in groups.values())
    failed = sum(g["failed"] for g in groups.values())
    parallel = args.workers if args.backend == "dask" and not args.scheduler else 1
    console.out(f"to do: {todo} run(s), expected {duration(total / parallel)}"
                + (f" on {parallel} Dask workers" if parallel > 1 else "")
                + f"; skipped: {skipped} already recorded"
                + (f" ({failed} of them failed: add --retry-failed to rerun those)" if failed else ""))
    for line in invalid:
        console.out(f"would move to {results / 'runs' / 'quarantine'} and redo: {line}")
    if not args.skip_check:
        methods = sorted({r.spec.method for r in runs})
        unchecked = [m for m in methods if cached_verdict(registry.get("method", m)) is None]
        if unchecked:
            console.out(f"would first run check-method on: {', '.join(unchecked)} (once per source)")
    return 0


def _last_line(loaded, results: Path, no_page: bool) -> str:  # noqa: ANN001 - benchmark.results.Results | None
    """The sweep's last line: the best row per dataset (clean test score in the dataset's primary metric,
    mean over seeds, the model-selected draw, ``standard`` training where the suite has it) and the page."""
    if no_page or loaded is None:
        return ("no leaderboard rebuilt (--no-leaderboard): `python -m benchmark leaderboard` with the same "
                "--suite/--results builds it and names the best per dataset")
    page = f"page: {results / 'leaderboard.html'}"
    ok = [r for r in loaded.records if r.ok]
    if not ok:
        return f"best per dataset: none (no finished run); {page}"
    from benchmark.selection import select

    chosen, _ = select(loaded, loaded.scope.selection_rule)
    ok = [r for r in chosen.records if r.ok and r.run_id not in chosen.stale] or [r for r in chosen.records if r.ok]
    conditions = sorted({r.spec.train_condition for r in ok}, key=lambda c: (c != "standard", c))
    scores: dict[str, dict[str, list[float]]] = {}
    for r in ok:
        if r.spec.train_condition != conditions[0]:
            continue
        metric = str(r.body.get("primary_metric", "accuracy"))
        value = (r.metrics.get("clean") or {}).get(metric)
        if isinstance(value, int | float):
            scores.setdefault(r.dataset, {}).setdefault(r.method, []).append(float(value))
    best = []
    for dataset, rows in sorted(scores.items()):
        row, values = max(rows.items(), key=lambda kv: (sum(kv[1]) / len(kv[1]), kv[0]))
        best.append(f"{dataset} {row} {100 * sum(values) / len(values):.1f}%")
    training = f", training {conditions[0]}" if conditions[0] != "standard" else ""
    return f"best per dataset (clean test score, primary metric{training}): {'; '.join(best)}; {page}"


def _rebuild(name: str, results: Path | None):  # noqa: ANN202 - benchmark.results.Results
    """Rebuild every output of a suite's folder from its records (no plan, no torch, no method import).
    Three processes share the work: the record files are decoded by a reader (benchmark.prefetch) and the
    statistics computed by a process that imports scipy's tests and statsmodels meanwhile
    (benchmark.report.stats_side), while this one imports pandas and the report code, tables the records
    and writes the leaderboard."""
    from benchmark.paths import suite_figures_dir
    from benchmark.prefetch import RecordPrefetch
    from benchmark.report.stats_side import StatsSide
    from benchmark.scope import suite_scope

    scope = suite_scope(name, results)
    out = scope.results_dir
    prefetch = RecordPrefetch(out, scope)
    import pandas  # noqa: F401 - before the statistics process is forked, so that it need not import it again

    side = StatsSide.start()
    try:
        gc.disable()  # millions of containers and no cycles until the records are read and tabled
        try:
            from benchmark.report import write_reports
            from benchmark.results import load

            loaded = load(out, scope, prefetch)
        finally:
            prefetch.close()
            gc.freeze()  # what is alive now lives until the process ends: later collections skip it
            gc.enable()
    except BaseException:
        side.close()
        raise
    write_reports(loaded, out, scope.name, scope.baseline, scope.selection_rule, suite_figures_dir(out),
                  scope.noninferiority_margin, side)
    LOG.info("leaderboard of %d record(s) (%d stale, %d failed) -> %s", len(loaded.records), len(loaded.stale),
             len(loaded.failed), out / "leaderboard.md")
    for note in loaded.notes():
        LOG.info("note: %s", note)
    return loaded


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from benchmark.paths import REPO_ROOT

    if args.record:
        from benchmark.provenance import record_leaderboard

        results = args.results or _scope(args.suite).results_dir
        commit = record_leaderboard(args.suite, results)
        LOG.info("recorded with datalad run as commit %s; `datalad rerun %s` reproduces it", commit[:12],
                 commit[:12])
        return 0
    global EXIT_WITHOUT_TEARDOWN
    _KEPT.append(_rebuild(args.suite, args.results))
    EXIT_WITHOUT_TEARDOWN = True  # its files are written and closed; its children are joined
    if args.update_readme:
        from benchmark.report.readme import update_readme

        update_readme(REPO_ROOT / "README.md", _scope(args.suite, args.results).results_dir / "leaderboard.md")
        LOG.info("README.md: leaderboard block replaced")
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
    LOG.info("%d claims (%s) -> %s", len(checked), ", ".join(f"{n} {v}" for v, n in sorted(counts.items())), out)
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from benchmark.figures import draw_all
    from benchmark.paths import suite_figures_dir

    results = _selected(args.suite, args.results)
    if not results.records:
        LOG.error("no record of suite %s in %s; run `%s run --suite %s` first", results.scope.name,
                  results.scope.results_dir / "runs", _prog(), args.suite)
        return 2

    def suite_results(name: str):
        """Another suite's results: beside an explicit --results as ``DIR/NAME``, else its own folder."""
        return _selected(name, args.results / name if args.results else None)

    out = args.out or suite_figures_dir(results.scope.results_dir)
    for name, result in draw_all(results, out, suite_results).items():
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
        LOG.error("%s: FAIL  import: %s; the file must import before any check can run", args.path,
                  registry.describe_import_error(exc, Path(args.path).resolve()))
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


#: What ``template`` copies: kind -> (file in benchmark/templates, default destination in the project folder).
TEMPLATES = {"method": ("my_fusion.py", "methods/my_fusion.py"),
             "dataset": ("my_dataset.py", "datasets/my_dataset.py"),
             "protocol": ("my_protocol.py", "my_protocol.py")}


def cmd_template(args: argparse.Namespace) -> int:
    """Copy a starting point for a new method, dataset loader or protocol (never over an existing file):
    the templates ship in the package, so this works from an installed copy too."""
    import shutil

    from benchmark.paths import REPO_ROOT, TEMPLATES_DIR

    source, default = TEMPLATES[args.kind]
    dest = args.dest or REPO_ROOT / default
    if dest.exists():
        raise FileExistsError(f"{dest} exists; give another destination: template {args.kind} PATH")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TEMPLATES_DIR / source, dest)
    then = {"method": f"edit it, then `{_prog()} check-method {dest}`",
            "dataset": f"edit it, then `{_prog()} list datasets` (its folder must be datasets/ or on "
                       "BENCHMARK_DATASETS_PATH)",
            "protocol": "edit it, move it into benchmark/protocols/ and add it to PROTOCOLS in "
                        "benchmark/protocols/__init__.py"}
    print(f"{args.kind} template -> {dest}; {then[args.kind]}")
    return 0


def version_text() -> str:
    """The package's version and the engine's (which every run id hashes; CHANGELOG.md lists them)."""
    from importlib.metadata import PackageNotFoundError, version

    from benchmark.version import ENGINE_VERSION

    try:
        package = version("robust-mm-bench")
    except PackageNotFoundError:
        package = "(not installed)"
    return f"robust-mm-bench {package}, engine {ENGINE_VERSION}"


def _int_at_least(low: int):  # noqa: ANN202 - an argparse type
    """An argparse type: argparse names the flag in its message ("argument --sample: ...")."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{text!r}: must be {low} or more")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def build_parser() -> argparse.ArgumentParser:
    # -v / -q are accepted before or after the command: on the main parser (default 0) and on each command's
    # parser, with fresh actions that leave the main parser's value alone unless given there.
    def verbosity(parser: argparse.ArgumentParser, default: object) -> argparse.ArgumentParser:
        parser.add_argument("-v", "--verbose", action="count", default=default,
                            help="say more (every run's details; the log file always has them)")
        parser.add_argument("-q", "--quiet", action="count", default=default,
                            help="only warnings, errors and results")
        return parser

    parser = verbosity(argparse.ArgumentParser(prog=_prog(), description=__doc__), 0)
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add = sub.add_parser

    def add_parser(*a, **k):  # noqa: ANN002, ANN003, ANN202
        return verbosity(_add(*a, **k), argparse.SUPPRESS)

    sub.add_parser = add_parser  # type: ignore[method-assign]

    p = sub.add_parser("list", help="list registered methods, datasets, protocols or suites")
    p.add_argument("what", choices=["methods", "datasets", "protocols", "suites"])
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("prepare", help="build and checksum the prepared arrays of datasets")
    p.add_argument("--datasets", help="comma-separated names (default: all)")
    p.add_argument("--force", action="store_true",
                   help="rebuild even when a prepared file exists (also after a prepare was interrupted)")
    p.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
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
    p.add_argument("--no-progress", action="store_true",
                   help="no progress (by default a bar on a terminal, else one line per run)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (runs, what is recorded, expected time from past records, what would be "
                        "checked) and train nothing")
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
    p.add_argument("--sample", type=_positive_int, default=3, help="how many records to re-run (default 3)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="the seed of the sample's choice (default 0)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("check-method", help="conformance checks of a method file before it joins the leaderboard")
    p.add_argument("path", type=Path, help="the method file")
    p.add_argument("--seconds", type=_positive_int, default=120, help="time limit of each check (default 120)")
    p.add_argument("--json-out", type=Path, default=None, help="also write the verdicts as JSON to this file")
    p.set_defaults(func=cmd_check_method)

    p = sub.add_parser("claims", help="check every paper's claims and the known answers on the stored records of "
                                      "the suites they name (trains nothing) and write results/claims.md")
    p.add_argument("--out", type=Path, default=None, help="where the page goes (default results/claims.md)")
    p.set_defaults(func=cmd_claims)

    p = sub.add_parser("figures", help="draw every paper figure from the stored records (trains nothing)")
    p.add_argument("--suite", default="full", help="the suite whose runs are drawn (default: full, the committed one)")
    p.add_argument("--results", type=Path, help=RESULTS_HELP)
    p.add_argument("--out", type=Path, default=None,
                   help="where the PNG and PDF files go (default: RESULTS/figures; paper_figures/ for the full suite)")
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("template", help="copy the template of a new method, dataset loader or protocol")
    p.add_argument("kind", choices=sorted(TEMPLATES))
    p.add_argument("dest", type=Path, nargs="?", default=None,
                   help="where to write it (default: methods/my_fusion.py, datasets/my_dataset.py, my_protocol.py)")
    p.set_defaults(func=cmd_template)
    return parser


def main(argv: list[str] | None = None) -> int:
    from benchmark import console

    _ARGV[:] = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    console.configure(min(args.verbose, 1) - min(args.quiet, 1))
    try:
        return args.func(args)
    except KeyboardInterrupt:
        # Records are written atomically as runs finish: nothing finished is lost, and the same command resumes.
        if args.command == "prepare":
            only = f" --datasets {args.datasets}" if args.datasets else ""
            LOG.warning("interrupted: a dataset being prepared may be left half-built; `%s prepare%s --force` "
                        "rebuilds it", _prog(), only)
        else:
            LOG.warning("interrupted; `%s` starts again where it stopped", _command_line())
        return 130
    except (KeyError, ValueError, FileNotFoundError, FileExistsError, RuntimeError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc  # ProtocolError is a ValueError
        LOG.error("%s", msg)
        return 2
    finally:
        console.close_log_files()
