"""The bindings browser checks use, by name (wrangler.toml declares them)."""

RUNS = "BROWSER_TEST_RUNS"  # one BrowserTestRun per run, named by the run id
LIMITS = "BROWSER_LIMITS"  # one BrowserLimits, named "global"
ARTIFACTS = "ARTIFACTS"  # the R2 bucket for screenshots
