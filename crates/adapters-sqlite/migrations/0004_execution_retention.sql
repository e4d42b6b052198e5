-- Execution retention: the purge deletes the executions that ended longest ago first. Only
-- ended executions have `finished_at`, so the partial index holds exactly the candidates.
CREATE INDEX executions_by_finish ON executions (finished_at) WHERE finished_at IS NOT NULL;
