"""Fuzz targets (atheris): one per input kind; see fuzz/README.md."""
