"""SES SMTP credentials for the PDS: the Lambda handler of the stack's custom resource.

`handler.py` runs in Lambda as a top-level module (no pds_aws imports): it creates an access
key for the SES SMTP user, derives the SMTP password and stores `PDS_EMAIL_SMTP_URL` in
Secrets Manager, so the secret key never appears in the template, the outputs or a log.
"""
