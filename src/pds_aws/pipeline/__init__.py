"""The optional delivery pipeline (`[pipeline]`): its settings, stages and stack.

`settings` is imported by the config and must stay free of CDK imports.
"""
