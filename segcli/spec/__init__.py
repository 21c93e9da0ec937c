"""Stage 1, the spec: load YAML with positions, parse it into the typed model, resolve names,
columns and types against the sources' schemas, and report every diagnostic at once.

May import: segcli.errors, segcli.fs, and its own modules. Nothing later in the pipeline.
"""
