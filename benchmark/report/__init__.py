"""Rendering results for people: Markdown tables, the statistics and claims pages, the HTML page and the
README block, each in its own module, all from ``benchmark.results`` (never torch, never a method).

``write_reports`` writes every output of a suite's folder; the modules can be used one by one."""

__all__ = ["write_reports"]


def __getattr__(name: str):  # noqa: ANN202 - PEP 562: the report modules are imported on first use only
    if name == "write_reports":
        from benchmark.report.write import write_reports

        return write_reports
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
