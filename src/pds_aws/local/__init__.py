"""The local runtime: the synthesized Fargate task on one machine, no AWS and no Docker."""
