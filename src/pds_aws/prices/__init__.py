"""Price data of the cost model (prices.toml), read by pds_aws.cost."""
