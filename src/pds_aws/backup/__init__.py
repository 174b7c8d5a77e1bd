"""The backup sidecar: restores the PDS data directory from S3, then replicates it.

`pds-aws-backup` (this package's `__main__`) is the program the task's `backup` container runs;
its design, step by step, and which module holds each step: guides/BACKUP.md. Pure parts:
`layout` (the PDS file list and the backup object layout), `plan` (restore plans and Litestream
settings); I/O: `store` (S3 / file backup stores), `litestream` (running it). The CDK construct
and Dockerfile live beside them (`construct.py`, `Dockerfile`).
"""
