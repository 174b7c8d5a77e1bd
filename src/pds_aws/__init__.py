"""pds-aws: a Bluesky PDS on AWS, deployed from one config file."""
