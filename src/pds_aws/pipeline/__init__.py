"""The optional delivery pipeline (`[pipeline]`): its stages and stack.

Its settings are a section of the config (pds_aws.config.pipeline), validated with the rest.
"""
