"""Operator commands: what an operator does with a running PDS, local or on AWS."""
