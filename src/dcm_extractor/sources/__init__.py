"""Where files come from and what they add up to: walking a case folder, zip members, one
case's rows and report lines, the series table's tally, names that are not UTF-8."""
