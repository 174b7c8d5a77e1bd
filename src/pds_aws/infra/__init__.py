"""The CDK side: the stack and one construct per part of the architecture."""
