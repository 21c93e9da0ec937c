"""Stage 2, planning: compile the resolved spec's conditions and score rules into segcli's own
IR (`ir.py`), and plan the per-source scans and aggregates, as one frozen, printable Plan value
(`planner.build_plan`; the library call is `segcli.plan(...)`). Building a plan reads schemas,
never rows. (The package is not named `plan`, so that `segcli.plan` stays the library call.)

May import: segcli.spec (and errors, fs).
"""
