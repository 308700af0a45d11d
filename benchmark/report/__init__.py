"""Rendering results for people: Markdown tables, the statistics and claims pages, the HTML page and the
README block, each in its own module, all from ``benchmark.results`` (never torch, never a method).

``write_reports`` writes every output of a suite's folder; the modules can be used one by one."""

from benchmark.report.write import write_reports

__all__ = ["write_reports"]
