"""E-mail: the SES construct and the Lambda handler that writes the SMTP URL secret."""
