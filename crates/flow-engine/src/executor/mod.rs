//! Runs executions: claims them with a lease, walks the graph, records every step.
