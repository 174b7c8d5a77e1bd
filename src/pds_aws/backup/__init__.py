"""The backup sidecar: restores the PDS data directory from S3, then replicates it.

`pds-aws-backup` (this package's `__main__`) is the program the task's `backup` container runs.
Layout of the package: `layout` (the PDS file list and the backup object layout, pure),
`plan` (restore plans and Litestream config, pure), `store` (S3 / file backup stores, I/O),
`sidecar` (run, health, drill, restore-at, status). The CDK construct and Dockerfile live
beside them (`construct.py`, `Dockerfile`).
"""
