"""The static copy of the public site (issue 11): ``export_static()`` writes it,
``masthead export-static`` runs it from the command line, ``reach.jobs`` keeps it fresh."""

from .exporter import ExportReport, build_search_index, export_static, write_archive

__all__ = ["ExportReport", "build_search_index", "export_static", "write_archive"]
