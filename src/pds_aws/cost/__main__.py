"""`python -m pds_aws.cost --write-guide | --check-guide`: guides/COST.md from the model."""

import sys

from pds_aws.cost.guide import main

sys.exit(main())
