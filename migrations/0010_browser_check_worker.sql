-- A browser check may target a managed Worker by name: the run records which.
ALTER TABLE browser_test_runs ADD COLUMN worker TEXT;
