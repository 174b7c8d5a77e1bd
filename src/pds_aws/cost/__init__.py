"""The cost model over the synthesized template, its price data and its commands."""
