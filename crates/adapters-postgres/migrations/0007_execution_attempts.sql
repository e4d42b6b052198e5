-- Runs are counted before they begin (`attempts`, by the claim that starts a run), no longer as
-- lease expiries afterwards (`lease_attempts`): a run whose process dies stays counted, and an
-- execution is failed once its counted runs reach FLOWMATE_EXECUTION_MAX_ATTEMPTS. A running
-- execution is in a run the old count did not include yet. Renaming a column and adding a
-- nullable one change the catalogue only; the update touches the running rows alone.
ALTER TABLE executions RENAME COLUMN lease_attempts TO attempts;
UPDATE executions SET attempts = attempts + 1 WHERE status = 'running';

-- The relay (process incarnation) holding an outbox row's claim: a restarted process releases
-- the claims its earlier incarnation left instead of waiting for them to expire.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
