"""`pds-aws doctor`: the checks (checks.py), their report (report.py), the command."""
