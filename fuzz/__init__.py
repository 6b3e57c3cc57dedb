"""Coverage-guided fuzz targets (atheris, libFuzzer): one target per module, seeds in
`fuzz/corpus/<target>/`. `python -m fuzz --help` runs them; see README.md, Development."""
