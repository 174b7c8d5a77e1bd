"""The PDS secret's keys: the Lambda handler of the stack's custom resource.

`handler.py` runs in Lambda as a top-level module (no pds_aws imports): it adds the missing
keys of the one PDS secret (admin password, JWT secret, rate-limit bypass key) with random
values, and never touches a key that is already there. The local runtime runs the same
function against its local AWS (pds_aws.local.provision).
"""
