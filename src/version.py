"""The release apiary reports in `/health` unless the VERSION var overrides it."""

VERSION = "0.1.0"
