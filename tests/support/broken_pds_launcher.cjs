// A release that fails `pds-aws smoke` and changes no schema (see broken_release.cjs).
"use strict";
require("./broken_release.cjs")({ migrate: false });
