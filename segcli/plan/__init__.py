"""Stage 2, the plan: compile the resolved spec's conditions and score rules into segcli's
own IR, and plan the per-source scans and aggregates, as one frozen, printable Plan value.
Building a plan reads schemas, never rows.

May import: segcli.spec (and errors, fs).
"""
