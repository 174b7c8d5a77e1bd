// A release that applies one extra migration, then fails `pds-aws smoke` (see broken_release.cjs).
"use strict";
require("./broken_release.cjs")({ migrate: true });
